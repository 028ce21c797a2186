"""Machine classes: Kubernetes quantities, node selectors, config parsing and Autopilot's rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedro_gcs_bridge.config import parse_config
from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.machines import (
    BUILTIN_CLASSES,
    GIB,
    MIB,
    MachineClass,
    check_autopilot,
    cpu_millis,
    format_cpu,
    format_memory,
    memory_bytes,
)


def parse_machine_classes(raw: object) -> dict[str, MachineClass]:
    return parse_config({"machine_classes": raw}).machine_classes


class TestQuantities:
    @pytest.mark.parametrize(
        ("text", "millis"),
        [("500m", 500), ("2", 2000), ("0.5", 500), (1, 1000), ("1.5", 1500), (" 250m ", 250)],
    )
    def test_cpu(self, text: str | int, millis: float) -> None:
        assert cpu_millis(text) == millis

    @pytest.mark.parametrize(
        ("text", "size"),
        [("2Gi", 2 * GIB), ("512Mi", 512 * MIB), ("1G", 10**9), ("1k", 1000), ("1024", 1024)],
    )
    def test_memory(self, text: str, size: float) -> None:
        assert memory_bytes(text) == size

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [("2GB", "unknown unit 'GB'"), ("lots", "not a Kubernetes quantity"), ("", "quantity")],
    )
    def test_bad_quantity_says_how_to_write_one(self, text: str, fragment: str) -> None:
        with pytest.raises(ConfigError, match="memory") as caught:
            memory_bytes(text)
        assert fragment in str(caught.value)

    @pytest.mark.parametrize(
        ("millis", "text"), [(250, "250m"), (1000, "1"), (1250, "1250m"), (1000.2, "1001m")]
    )
    def test_format_cpu(self, millis: float, text: str) -> None:
        assert format_cpu(millis) == text

    @pytest.mark.parametrize(
        ("size", "text"), [(4 * GIB, "4Gi"), (1.5 * GIB, "1536Mi"), (1, "1Mi")]
    )
    def test_format_memory_rounds_up(self, size: float, text: str) -> None:
        assert format_memory(size) == text


class TestMachineClass:
    @pytest.mark.parametrize(
        ("machine", "selector"),
        [
            (MachineClass("a"), {}),
            (
                MachineClass("a", compute_class="Balanced"),
                {"cloud.google.com/compute-class": "Balanced"},
            ),
            (MachineClass("a", spot=True), {"cloud.google.com/gke-spot": "true"}),
            (
                MachineClass("a", accelerator="nvidia-l4", gpu_count=1),
                {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            ),
            (
                MachineClass("a", compute_class="Performance", machine_family="c3"),
                {
                    "cloud.google.com/compute-class": "Performance",
                    "cloud.google.com/machine-family": "c3",
                },
            ),
            (MachineClass("a", arch="arm64"), {"kubernetes.io/arch": "arm64"}),
        ],
    )
    def test_node_selector(self, machine: MachineClass, selector: dict[str, str]) -> None:
        assert machine.node_selector() == selector

    def test_gpus_are_a_limit(self) -> None:
        assert BUILTIN_CLASSES["gpu"].limits() == {"nvidia.com/gpu": "1"}
        assert BUILTIN_CLASSES["large"].limits() == {}

    def test_size_orders_gpus_then_cpu_then_memory(self) -> None:
        ordered = sorted(
            [
                MachineClass("gpu", cpu="1", gpu_count=1, accelerator="nvidia-l4"),
                MachineClass("fat", cpu="2", memory="12Gi"),
                MachineClass("wide", cpu="2", memory="8Gi"),
                MachineClass("tiny", cpu="250m", memory="64Gi"),
            ],
            key=MachineClass.size_key,
        )
        assert [m.name for m in ordered] == ["tiny", "wide", "fat", "gpu"]


class TestParseMachineClasses:
    def test_none_gives_the_builtins(self) -> None:
        assert parse_machine_classes(None) == dict(BUILTIN_CLASSES)

    def test_overriding_a_builtin_keeps_what_is_not_set(self) -> None:
        medium = parse_machine_classes({"medium": {"cpu": "2"}})["medium"]
        assert medium.requests() == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "2Gi"}

    def test_new_class_starts_from_default(self) -> None:
        big = parse_machine_classes({"big": {"memory": "8Gi", "ephemeral-storage": "3Gi"}})["big"]
        assert big.requests() == {"cpu": "500m", "memory": "8Gi", "ephemeral-storage": "3Gi"}

    def test_yaml_numbers_become_quantities(self) -> None:
        trainer = parse_machine_classes(
            {"t": {"cpu": 2, "gpu_count": "2", "accelerator": "nvidia-l4"}}
        )["t"]
        assert (trainer.cpu, trainer.gpu_count) == ("2", 2)

    @pytest.mark.parametrize(
        ("raw", "fragments"),
        [
            pytest.param(
                {"x": {"gpus": 1}},
                ["'machine_classes.x.gpus' is not a known key; known: ['cpu'"],
                id="key",
            ),
            pytest.param({"x": "big"}, ["'machine_classes.x' must be a mapping"], id="not-mapping"),
            pytest.param(
                {"x": {"spot": "maybe"}}, ["'machine_classes.x.spot' must be true"], id="bool"
            ),
        ],
    )
    def test_bad_entry_names_it(self, raw: dict[str, object], fragments: list[str]) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_machine_classes(raw)
        for fragment in fragments:
            assert fragment in str(caught.value)

    @pytest.mark.parametrize("text", ["false", "no", "off", "0"])
    def test_spot_false_as_a_string_is_false(self, text: str) -> None:
        assert parse_machine_classes({"x": {"spot": text}})["x"].spot is False

    def test_gpu_count_that_is_not_a_number_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"'machine_classes\.x\.gpu_count' must be a whole"):
            parse_machine_classes({"x": {"gpu_count": "two", "accelerator": "nvidia-l4"}})


class TestAutopilot:
    @pytest.mark.parametrize("name", sorted(BUILTIN_CLASSES))
    def test_builtin_classes_are_accepted_as_they_are(self, name: str) -> None:
        check = check_autopilot(BUILTIN_CLASSES[name])
        assert (check.errors, check.warnings) == ((), ())
        assert check.adjusted == BUILTIN_CLASSES[name]

    @pytest.mark.parametrize(
        ("machine", "fragment"),
        [
            pytest.param(
                MachineClass("m", cpu="31", memory="64Gi"),
                "cpu 31 is above the Autopilot maximum of 30 for general-purpose",
                id="cpu-above-30",
            ),
            pytest.param(
                MachineClass("m", cpu="30", memory="111Gi"),
                "memory 111Gi is above the Autopilot maximum of 110Gi",
                id="memory-above-110Gi",
            ),
            pytest.param(
                MachineClass("m", ephemeral_storage="20Gi"),
                "ephemeral_storage 20Gi is above the Autopilot maximum of 10Gi",
                id="ephemeral-20Gi",
            ),
            pytest.param(
                MachineClass("m", cpu="223", memory="500Gi", compute_class="Balanced"),
                "maximum of 222 for Balanced",
                id="balanced-cpu",
            ),
            pytest.param(
                MachineClass(
                    "m", cpu="48", memory="192Gi", compute_class="Scale-Out", arch="arm64"
                ),
                "cpu 48 is above the Autopilot maximum of 43 for Scale-Out arm64",
                id="scale-out-arm64-cpu",
            ),
            pytest.param(
                MachineClass("m", cpu="56", memory="224Gi", compute_class="Scale-Out"),
                "cpu 56 is above the Autopilot maximum of 54 for Scale-Out",
                id="scale-out-cpu",
            ),
            pytest.param(
                MachineClass("m", cpu="96", memory="300Gi", accelerator="nvidia-l4", gpu_count=8),
                "cpu 96 is above the Autopilot maximum of 95 ",
                id="l4-pod-cpu-cap",
            ),
            pytest.param(
                MachineClass(
                    "m", cpu="8", memory="600Gi", accelerator="nvidia-tesla-t4", gpu_count=4
                ),
                "memory 600Gi is above the Autopilot maximum of 601600Mi ",
                id="t4-pod-memory-cap",
            ),
            pytest.param(
                MachineClass("m", gpu_count=1),
                "gpu_count=1 needs an accelerator type",
                id="gpu-without-accelerator",
            ),
            pytest.param(
                MachineClass("m", cpu="4", memory="16Gi", accelerator="nvidia-l4"),
                "accelerator nvidia-l4 needs gpu_count >= 1",
                id="accelerator-without-gpu",
            ),
            pytest.param(
                MachineClass("m", cpu="a lot"), "is not a Kubernetes quantity", id="bad-cpu"
            ),
        ],
    )
    def test_requests_autopilot_rejects_are_errors(
        self, machine: MachineClass, fragment: str
    ) -> None:
        check = check_autopilot(machine)
        assert any(error.startswith("machine class 'm': ") for error in check.errors)
        assert any(fragment in error for error in check.errors), check.errors

    @pytest.mark.parametrize(
        ("machine", "cpu", "memory"),
        [
            pytest.param(MachineClass("m", cpu="4", memory="1Gi"), "4", "4Gi", id="ratio-1-to-1"),
            pytest.param(
                MachineClass("m", cpu="100m", memory="1Gi"), "250m", "1Gi", id="cpu-minimum"
            ),
            pytest.param(
                MachineClass("m", cpu="1", memory="8Gi"), "1250m", "8Gi", id="ratio-above-6.5"
            ),
            pytest.param(
                MachineClass("m", cpu="300m", memory="1Gi"), "500m", "1Gi", id="cpu-250m-steps"
            ),
            pytest.param(
                MachineClass("m", cpu="250m", memory="256Mi"), "250m", "512Mi", id="min-memory"
            ),
            pytest.param(
                MachineClass("m", cpu="1", memory="4Gi", accelerator="nvidia-l4", gpu_count=1),
                "2",
                "7Gi",
                id="gpu-pod-minimums",
            ),
        ],
    )
    def test_requests_autopilot_raises_are_warnings_with_the_new_figures(
        self, machine: MachineClass, cpu: str, memory: str
    ) -> None:
        check = check_autopilot(machine)
        assert check.errors == ()
        (warning,) = check.warnings
        assert (check.adjusted.cpu, check.adjusted.memory) == (cpu, memory)
        assert f"to cpu={cpu} memory={memory} " in warning
        assert warning.startswith("machine class 'm': Autopilot would raise")

    @pytest.mark.parametrize(
        "machine",
        [
            MachineClass("m", cpu="54", memory="216Gi", compute_class="Scale-Out"),
            MachineClass("m", cpu="43", memory="172Gi", compute_class="Scale-Out", arch="arm64"),
            MachineClass("m", cpu="95", memory="363Gi", accelerator="nvidia-l4", gpu_count=8),
        ],
        ids=["scale-out-amd64-max", "scale-out-arm64-max", "l4-8-gpus-max"],
    )
    def test_the_maximums_themselves_are_accepted(self, machine: MachineClass) -> None:
        assert check_autopilot(machine).errors == ()

    def test_per_gpu_count_figures_only_warn_because_they_are_unverified(self) -> None:
        # Within the verified per-pod maximum (95 vCPU), above the unverified 1-GPU row (31).
        machine = MachineClass("m", cpu="40", memory="150Gi", accelerator="nvidia-l4", gpu_count=1)
        check = check_autopilot(machine)
        assert check.errors == ()
        (warning,) = check.warnings
        assert "cpu 40 is above 31" in warning
        assert "memory 150Gi is above 115Gi" in warning
        assert "not verified" in warning
        assert check.adjusted == machine

    def test_a_gpu_type_without_figures_is_left_to_autopilot(self) -> None:
        machine = MachineClass(
            "m", cpu="60", memory="300Gi", accelerator="nvidia-a100-80gb", gpu_count=1
        )
        check = check_autopilot(machine)
        assert (check.errors, check.warnings) == ((), ())

    def test_custom_compute_class_is_left_to_the_cluster(self) -> None:
        check = check_autopilot(MachineClass("m", cpu="100m", compute_class="my-class"))
        assert (check.errors, check.warnings) == ((), ())

    def test_setting_the_suggested_figures_silences_the_warning(self) -> None:
        check = check_autopilot(MachineClass("m", cpu="1100m", memory="1126Mi"))
        assert check.warnings
        assert check_autopilot(check.adjusted).warnings == ()

    @settings(max_examples=200, deadline=None)
    @given(
        cpu=st.integers(min_value=1, max_value=30_000),
        memory_mi=st.integers(min_value=1, max_value=110 * 1024),
    )
    def test_adjusted_requests_are_never_lower_and_fit_autopilots_grid(
        self, cpu: int, memory_mi: int
    ) -> None:
        machine = MachineClass("m", cpu=f"{cpu}m", memory=f"{memory_mi}Mi")
        check = check_autopilot(machine)
        if check.errors:
            return
        new_cpu = cpu_millis(check.adjusted.cpu)
        new_memory = memory_bytes(check.adjusted.memory)
        assert new_cpu >= cpu and new_memory >= memory_mi * MIB
        assert new_cpu >= 250 and new_cpu % 250 == 0
        assert new_memory >= 512 * MIB
        assert new_memory <= new_cpu / 1000 * 6.5 * GIB
        assert bool(check.warnings) is (check.adjusted != machine)
