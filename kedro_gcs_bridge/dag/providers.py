"""The Airflow and provider versions a generated DAG supports, and when each operator option it
passes arrived: the one table of those facts.

A DAG is created on one machine and parsed on another (a Composer image), so the creating
machine's versions say nothing. Options every supported set has are written as they are;
options only newer sets have (`NEWER_OPTIONS`) are passed by the DAG file itself, at parse time,
where the installed distributions are at least the versions named; combinations the oldest
supported set would run wrongly are refused when the DAG is created (`check_supported`).
Facts read from the providers' wheels and Composer's package lists
(constraints/airflow-oldest.txt and constraints/airflow-newest.txt pin both ends).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.errors import ConfigError

if TYPE_CHECKING:
    from kedro_gcs_bridge.config import BridgeConfig

AIRFLOW = "apache-airflow-core"
CNCF = "apache-airflow-providers-cncf-kubernetes"
GOOGLE = "apache-airflow-providers-google"

#: The module whose `__version__` is each distribution's (what a DAG file reads at parse time).
MODULES: Mapping[str, str] = {
    AIRFLOW: "airflow",
    CNCF: "airflow.providers.cncf.kubernetes",
    GOOGLE: "airflow.providers.google",
}

#: The oldest supported set: what composer-3-airflow-3.1.0-build.2 ships (google inferred from
#: its common-compat 1.7.4: the newest google release that fits it).
OLDEST: Mapping[str, str] = {AIRFLOW: "3.1.0", CNCF: "10.8.2", GOOGLE: "18.0.0"}
#: The newest set tested (pyproject's `airflow` extra).
NEWEST: Mapping[str, str] = {AIRFLOW: "3.3.2", CNCF: "10.25.0", GOOGLE: "22.8.0"}

#: Operator option -> the first versions that have it (GKEStartPodOperator's, where it differs).
OPTION_SINCE: Mapping[str, Mapping[str, str]] = {
    "deferrable": {CNCF: "5.2.0", GOOGLE: "9.0.0"},
    "logging_interval": {CNCF: "8.0.0", GOOGLE: "10.20.0"},
    "on_finish_action": {CNCF: "7.2.0", GOOGLE: "10.3.0"},
    "termination_message_policy": {CNCF: "7.4.0"},
    "active_deadline_seconds": {CNCF: "7.5.0"},
    "container_security_context": {CNCF: "4.4.0"},
    "use_internal_ip": {GOOGLE: "8.0.0"},
    "use_dns_endpoint": {GOOGLE: "14.1.0"},
    # Replaces reattach_on_restart (whose default, True, is what the bridge wants); an unknown
    # keyword below cncf 10.20, and only a warning below Airflow 3.3 (no task state store).
    "durable": {CNCF: "10.20.0", AIRFLOW: "3.3.0"},
}

#: What the DAG passes where the installed versions have it, beyond the oldest set.
NEWER_VALUES: Mapping[str, Any] = {"durable": True}


def _version(text: str) -> tuple[int, int, int]:
    """`10.8.2` -> (10, 8, 2), `3.3` -> (3, 3, 0); only the leading digits of a part count."""
    parts = [0, 0, 0]
    for index, part in enumerate(text.split(".")[:3]):
        digits = re.match(r"\d*", part).group()
        if not digits:
            break
        parts[index] = int(digits)
    return parts[0], parts[1], parts[2]


def has(versions: Mapping[str, str], option: str) -> bool:
    """Whether a set of installed versions (distribution -> version) has an option."""
    return all(
        _version(versions.get(dist, "0")) >= _version(least)
        for dist, least in OPTION_SINCE[option].items()
    )


def newer_options() -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(module -> version needed, options) the DAG file passes only where the installed
    modules' `__version__` are at least those: the options the oldest supported set lacks."""
    return [
        ({MODULES[dist]: least for dist, least in OPTION_SINCE[option].items()}, {option: value})
        for option, value in NEWER_VALUES.items()
        if not has(OLDEST, option)
    ]


def _dns_endpoint_deferred(config: BridgeConfig) -> str | None:
    if not (config.pod.use_dns_endpoint and config.pod.deferrable):
        return None
    return (
        f"'pod.use_dns_endpoint: true' with 'pod.deferrable: true' needs {GOOGLE} >= 21.3.0 (its "
        "deferrable trigger ignores the DNS endpoint below that), and the oldest supported set "
        f"has {OLDEST[GOOGLE]}: set 'pod.deferrable: false', or reach the cluster another way."
    )


def _both_endpoints(config: BridgeConfig) -> str | None:
    if not (config.pod.use_dns_endpoint and config.pod.use_internal_ip):
        return None
    return (
        "'pod.use_dns_endpoint' and 'pod.use_internal_ip' are both true, but a pod reaches the "
        "cluster through one endpoint (the DNS one would win): set only one of them."
    )


#: Each check returns the problem, or None.
_CHECKS = (_dns_endpoint_deferred, _both_endpoints)


def check_supported(config: BridgeConfig) -> None:
    """Refuses, when the DAG is created, options the oldest supported set would run wrongly.

    Raises:
        ConfigError: Naming the keys, the versions they need and what to set instead.
    """
    if config.pod_backend == "local":
        return
    problems = [problem for check in _CHECKS if (problem := check(config))]
    if problems:
        raise ConfigError(" ".join(problems))
