"""Machine classes: named pod sizes for GKE Autopilot, and the Autopilot rules they must obey.

A machine class (read from the config in `config.py`) is chosen per group with a
`machine.<class>` tag. It becomes the pod's resource requests (Autopilot bills and schedules on
requests) and node selectors (compute class, Spot, GPU, machine family, CPU architecture).
Everything here is pure: requests are checked against tables of Autopilot limits, nothing
talks to Kubernetes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from kedro_gcs_bridge.config import BUILTIN_CLASSES, DEFAULT_CLASS, MachineClass
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.values import GIB, MIB, cpu_millis, memory_bytes

__all__ = [
    "BUILTIN_CLASSES",
    "DEFAULT_CLASS",
    "GIB",
    "MIB",
    "AutopilotCheck",
    "MachineClass",
    "check_autopilot",
    "cpu_millis",
    "format_cpu",
    "format_memory",
    "memory_bytes",
]


def format_cpu(millis: float) -> str:
    """Millicores as a Kubernetes quantity: whole cores when exact, else millicores."""
    millis = math.ceil(millis)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(size: float) -> str:
    """Bytes as a Kubernetes quantity in Gi when exact, else Mi (rounded up)."""
    if size % GIB == 0:
        return f"{int(size // GIB)}Gi"
    return f"{math.ceil(size / MIB)}Mi"


@dataclass(frozen=True)
class AutopilotLimits:
    """What Autopilot accepts for one compute class (per pod, summed over its containers).

    Figures from Google's "Resource requests in Autopilot" page (minimums without bursting).
    `max_ratio`/`min_ratio` are GiB of memory per vCPU; None means not enforced.
    """

    min_cpu_m: float
    max_cpu_m: float
    min_memory: float
    max_memory: float
    min_ratio: float | None
    max_ratio: float | None
    cpu_step_m: float | None = None
    min_ephemeral: float = 10 * MIB
    max_ephemeral: float = 10 * GIB


# Sources (checked 2026-11-30). Google's own tables are on "Resource requests in Autopilot",
# https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests
# (#compute-class-min-max, #hardware-min-max); the stored copies of that page and of
# .../concepts/autopilot-compute-classes and .../how-to/autopilot-gpus hold only their openings,
# not the tables. The maximums and ratios below match the copy of those tables in Google's
# Autopilot cost calculator, which cites that page: github.com/GoogleCloudPlatform/
# autopilot-cost-calculator, config.ini `[limits]`/`[ratios]` (last changed 2024-05-30, commit
# f508541; read at HEAD 4fd775d, 2025-07-21): general-purpose 30 vCPU / 110 GiB, ratio 1-6.5;
# Balanced 222 / 851, 1-8; Scale-Out 54 / 216 (arm64 43 / 172), 1:4. The minimums (250m,
# 512 MiB: clusters without Pod bursting, before GKE 1.30.2, which also round CPU up to 250m
# steps) are the page's older figures, kept so that the figures printed hold on every cluster;
# with bursting the calculator lists 50m / 52 MiB.
AUTOPILOT_LIMITS: Mapping[str, AutopilotLimits] = {
    "general-purpose": AutopilotLimits(250, 30_000, 512 * MIB, 110 * GIB, 1.0, 6.5, 250),
    "Balanced": AutopilotLimits(250, 222_000, 512 * MIB, 851 * GIB, 1.0, 8.0, 250),
    "Scale-Out": AutopilotLimits(250, 54_000, 1 * GIB, 216 * GIB, 4.0, 4.0, 250),
    # Scale-Out on Arm (T2A) has smaller nodes; keyed "<class> <arch>" (see `_family`).
    "Scale-Out arm64": AutopilotLimits(250, 43_000, 1 * GIB, 172 * GIB, 4.0, 4.0, 250),
    # Performance and Accelerator depend on the machine family / GPU type; only the
    # general bounds that hold for all of them are checked here.
    "Performance": AutopilotLimits(1, 10**9, 1 * MIB, 10**15, None, None),
    "Accelerator": AutopilotLimits(1, 10**9, 1 * MIB, 10**15, None, None),
}

#: Per GPU type: (min cpu, max cpu, min memory, max memory) of one pod, whatever its GPU
#: count, from the cost calculator's `gpupod_<type>_*` limits above (verified: errors and raised
#: requests come only from these).
GPU_POD_LIMITS: Mapping[str, tuple[float, float, float, float]] = {
    "nvidia-l4": (2_000, 95_000, 7 * GIB, 363 * GIB),
    "nvidia-tesla-t4": (500, 94_000, 512 * MIB, 587.5 * GIB),
}
#: Per GPU type: (max cpu, max memory) for each GPU of the pod, after Google's per-GPU-count
#: table ("Resource requests in Autopilot", #hardware-min-max), which no stored copy holds
#: (searched 2026-11-30: the pages and docs corpora return only the pages' openings). NOT
#: VERIFIED, so going above them is a warning that says so, never an error.
GPU_PER_GPU_UNVERIFIED: Mapping[str, tuple[float, float]] = {
    "nvidia-l4": (31_000, 115 * GIB),
    "nvidia-tesla-t4": (46_000, 287.5 * GIB),
}


@dataclass(frozen=True)
class AutopilotCheck:
    """The outcome of checking one machine class against Autopilot's rules."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    adjusted: MachineClass


def check_autopilot(machine: MachineClass) -> AutopilotCheck:
    """Checks a machine class against what Autopilot accepts.

    Requests above a maximum are errors (Autopilot rejects the pod). Requests under a minimum
    or off the memory:CPU ratio are warnings, because Autopilot silently raises them (and bills
    the raised figure): the warning names the adjusted figure.

    Args:
        machine: The class to check.

    Returns:
        Errors, warnings and the class as Autopilot would actually size it.
    """
    label = f"machine class '{machine.name}'"
    try:
        requests = _Requests(
            cpu_millis(machine.cpu),
            memory_bytes(machine.memory),
            memory_bytes(machine.ephemeral_storage),
        )
    except ConfigError as exc:
        return AutopilotCheck((f"{label}: {exc}",), (), machine)
    limits, errors = _limits_of(machine, label)
    if limits is None:
        # A custom ComputeClass: its rules live in the cluster, not here.
        return AutopilotCheck(tuple(errors), (), machine)
    errors += _above_maximum(machine, label, requests, limits)
    if errors:
        return AutopilotCheck(tuple(errors), (), machine)
    check = _as_autopilot_sizes_it(machine, label, requests, limits)
    unverified = _above_unverified_gpu_rows(machine, requests, label)
    return replace(check, warnings=(*check.warnings, unverified)) if unverified else check


@dataclass(frozen=True)
class _Requests:
    """A machine class's requests as numbers: millicores and bytes."""

    cpu: float
    memory: float
    ephemeral: float


def _family(machine: MachineClass) -> str:
    """What Autopilot sizes the pod by, as messages name it: its GPUs, or its compute class
    (with the CPU architecture where that has its own limits)."""
    if machine.accelerator:
        return f"{machine.gpu_count} x {machine.accelerator}"
    family = machine.compute_class or "general-purpose"
    with_arch = f"{family} {machine.arch}"
    return with_arch if with_arch in AUTOPILOT_LIMITS else family


def _limits_of(machine: MachineClass, label: str) -> tuple[AutopilotLimits | None, list[str]]:
    """The limits of the class's compute class (scaled per GPU), and its GPU setting errors."""
    limits = AUTOPILOT_LIMITS.get(_family(machine))
    if not machine.accelerator:
        if not machine.gpu_count:
            return limits, []
        return limits, [
            f"{label}: gpu_count={machine.gpu_count} needs an accelerator type "
            "(accelerator: nvidia-l4, nvidia-tesla-t4, ...)."
        ]
    if machine.gpu_count < 1:
        return limits, [f"{label}: accelerator {machine.accelerator} needs gpu_count >= 1."]
    pod = GPU_POD_LIMITS.get(machine.accelerator)
    if pod is None:
        return None, []  # a GPU type without figures here: left to Autopilot
    return AutopilotLimits(*pod, None, None), []


def _above_unverified_gpu_rows(machine: MachineClass, requests: _Requests, label: str) -> str:
    """A warning when requests pass the unverified per-GPU-count figures, or ''."""
    per_gpu = GPU_PER_GPU_UNVERIFIED.get(machine.accelerator or "")
    if per_gpu is None:
        return ""
    n = machine.gpu_count
    above = [
        f"{written} is above {fmt(limit * n)}"
        for value, limit, written, fmt in (
            (requests.cpu, per_gpu[0], f"cpu {machine.cpu}", format_cpu),
            (requests.memory, per_gpu[1], f"memory {machine.memory}", format_memory),
        )
        if value > limit * n
    ]
    if not above:
        return ""
    return (
        f"{label}: {' and '.join(above)}, the figures for {_family(machine)} pods this "
        "package knows from Google's per-GPU-count table, which it has not verified; check "
        "https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests"
        "#hardware-min-max before relying on it (Autopilot rejects a pod above the row)."
    )


def _above_maximum(
    machine: MachineClass, label: str, requests: _Requests, limits: AutopilotLimits
) -> list[str]:
    """An error for each request above the Autopilot maximum (Autopilot rejects the pod)."""
    rejected = f"for {_family(machine)}; Autopilot would reject the pod."
    table = (  # (request, maximum, what the user wrote, the maximum as written, after it)
        (requests.cpu, limits.max_cpu_m, f"cpu {machine.cpu}", format_cpu, rejected),
        (requests.memory, limits.max_memory, f"memory {machine.memory}", format_memory, rejected),
        (
            requests.ephemeral,
            limits.max_ephemeral,
            f"ephemeral_storage {machine.ephemeral_storage}",
            format_memory,
            "(without local SSD).",
        ),
    )
    return [
        f"{label}: {written} is above the Autopilot maximum of {fmt(maximum)} {after}"
        for value, maximum, written, fmt, after in table
        if value > maximum
    ]


def _as_autopilot_sizes_it(
    machine: MachineClass, label: str, requests: _Requests, limits: AutopilotLimits
) -> AutopilotCheck:
    """The class as Autopilot would size it, with a warning when that differs from it."""
    cpu, memory, ephemeral = _raise_to_limits(
        requests.cpu, requests.memory, requests.ephemeral, limits
    )
    adjusted = replace(
        machine,
        cpu=machine.cpu if cpu == requests.cpu else format_cpu(cpu),
        memory=machine.memory if memory == requests.memory else format_memory(memory),
        ephemeral_storage=machine.ephemeral_storage
        if ephemeral == requests.ephemeral
        else format_memory(ephemeral),
    )
    if adjusted == machine:
        return AutopilotCheck((), (), machine)
    warning = (
        f"{label}: Autopilot would raise the requests of {_family(machine)} pods from "
        f"cpu={machine.cpu} memory={machine.memory} "
        f"ephemeral={machine.ephemeral_storage} to cpu={adjusted.cpu} "
        f"memory={adjusted.memory} ephemeral={adjusted.ephemeral_storage} (and bill those); "
        "set these figures in machine_classes to silence this warning."
    )
    return AutopilotCheck((), (warning,), adjusted)


def _raise_to_limits(
    cpu: float, memory: float, ephemeral: float, limits: AutopilotLimits
) -> tuple[float, float, float]:
    """The requests Autopilot would size a pod to: minimums, then the memory:CPU ratio, then
    the CPU step, repeated until nothing moves (a CPU step can break the ratio again).

    Memory is kept in whole MiB, as `format_memory` writes it, so the figures printed in a
    warning are exactly the ones that pass a second check.
    """
    ephemeral = max(ephemeral, limits.min_ephemeral)
    for _ in range(10):
        before = (cpu, memory)
        cpu = max(cpu, limits.min_cpu_m)
        memory = max(memory, limits.min_memory)
        if limits.min_ratio is not None and memory < cpu / 1000 * limits.min_ratio * GIB:
            memory = math.ceil(cpu / 1000 * limits.min_ratio * GIB / MIB) * MIB
        if limits.max_ratio is not None and memory > cpu / 1000 * limits.max_ratio * GIB:
            cpu = math.ceil(memory / GIB / limits.max_ratio * 1000)
        if limits.cpu_step_m:
            cpu = math.ceil(cpu / limits.cpu_step_m) * limits.cpu_step_m
        if (cpu, memory) == before:
            break
    return cpu, memory, ephemeral
