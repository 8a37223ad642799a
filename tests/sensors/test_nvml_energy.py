"""NVML source against recorded readings replayed through pynvml's own calls and errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pynvml
import pytest

from sensors import nvml
from sensors.base import EMULATED, VENDOR, SensorConfigError, SensorError
from sensors.nvml import NvmlSensor, discover, estimate_power_update_interval, present
from sensors.nvml_replay import ReplayNvml

RECORDING = json.loads((Path(__file__).parent / "fixtures" / "nvml_recorded_readings.json").read_text())
T0 = 1000.0


class FakeClock:
    """A clock the test (or a fake sleep) advances."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def replay(recording: dict = RECORDING) -> tuple[FakeClock, ReplayNvml]:
    clock = FakeClock()
    return clock, ReplayNvml(recording, clock=clock)


def test_channels_energy_counter_only_where_supported() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, clock=clock)
    info = sensor.info
    assert info.kind == "nvml"
    assert info.channels == ("gpu0.power_w", "gpu0.energy_j", "gpu1.power_w")  # P100: NotSupported
    assert info.counters == ("gpu0.energy_j",)
    assert info.provenance == EMULATED  # a replay says so
    assert info.update_interval_s == nvml.DEFAULT_UPDATE_INTERVAL_S
    assert info.precision == {"gpu0.power_w": 0.001, "gpu0.energy_j": 0.001, "gpu1.power_w": 0.001}
    assert info.details["gpus"]["gpu1"] == {
        "name": "Tesla P100-PCIE-16GB",
        "uuid": "GPU-8c2f4d2b-1e7a-4b36-8b8f-3b2d8e4eaf12",
        "energy_counter": False,
    }
    assert info.details["driver_version"] == "535.183.01"
    assert NvmlSensor(module=ReplayNvml(RECORDING, clock), emulated=False, clock=clock).info.provenance == VENDOR


def test_readings_are_converted_from_mw_and_mj() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, clock=clock)
    clock.t = T0 + 0.05  # gpu0 update at 0.04 s, gpu1 update at 0.05 s
    sample = sensor.read()
    assert sample.t == T0 + 0.05
    assert sample.values["gpu0.power_w"] == 41.187
    assert sample.values["gpu0.energy_j"] == 48215.028
    assert sample.values["gpu1.power_w"] == 26.23
    assert "gpu1.energy_j" not in sample.values


def test_energy_of_a_window_is_the_counter_difference() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, indices=[0], clock=clock)
    clock.t = T0 + 0.10
    begin = sensor.read()
    clock.t = T0 + 0.20
    end = sensor.read()
    # updates 5..9 held 243118, 251907, 249876, 252310, 250044 mW for 20 ms each:
    # 4862 + 5038 + 4998 + 5046 + 5001 mJ (each rounded to mJ) = 24945 mJ
    assert end.values["gpu0.energy_j"] - begin.values["gpu0.energy_j"] == pytest.approx(24.945, abs=1e-9)
    assert sensor.info.channels == ("gpu0.power_w", "gpu0.energy_j")


def test_reads_within_one_update_are_stale() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, clock=clock, update_interval_s=0.02)
    clock.t = T0 + 0.101
    assert sensor.read().fresh
    clock.t = T0 + 0.105  # neither GPU has updated since
    assert not sensor.read().fresh
    clock.t = T0 + 0.121  # gpu0 updated at 0.12 s
    assert sensor.read().fresh


def test_update_interval_is_estimated_from_power_changes() -> None:
    clock, module = replay()
    module.nvmlInit()
    kwargs = dict(duration_s=0.3, poll_s=0.001, clock=clock, sleep=clock.sleep)
    assert estimate_power_update_interval(module, 0, **kwargs) == pytest.approx(0.02, abs=0.0011)
    clock.t = T0  # replay again from the start
    assert estimate_power_update_interval(module, 1, **kwargs) == pytest.approx(0.05, abs=0.0011)
    module.nvmlShutdown()


def test_sensor_uses_the_detected_interval_of_its_slowest_gpu() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, detect_interval=True, detect_duration_s=0.3, clock=clock, sleep=clock.sleep)
    assert sensor.info.update_interval_s == pytest.approx(0.05, abs=0.0011)
    assert sensor.info.details["update_interval_source"] == "detected from power-reading changes"


def test_constant_power_gives_no_estimate_and_the_default_stays() -> None:
    flat = copy.deepcopy(RECORDING)
    for update in flat["devices"][0]["updates"]:
        update["power_mw"] = 40000
    flat["devices"] = flat["devices"][:1]
    clock, module = replay(flat)
    sensor = NvmlSensor(module=module, detect_interval=True, detect_duration_s=0.2, clock=clock, sleep=clock.sleep)
    assert sensor.info.update_interval_s == nvml.DEFAULT_UPDATE_INTERVAL_S
    assert "did not change" in sensor.info.details["update_interval_source"]


def test_gpu_without_power_reading_is_skipped_or_refused() -> None:
    no_power = copy.deepcopy(RECORDING)
    no_power["devices"][1]["not_supported"] = ["nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption"]
    clock, module = replay(no_power)
    sensor = NvmlSensor(module=module, clock=clock)
    assert sensor.info.channels == ("gpu0.power_w", "gpu0.energy_j")
    assert sensor.info.details["skipped"] == {"gpu1": "power reading not supported"}
    with pytest.raises(SensorError, match="gpu1"):
        NvmlSensor([1], module=ReplayNvml(no_power, clock), clock=clock)
    with pytest.raises(SensorConfigError, match=r"\[5\]"):
        NvmlSensor([5], module=ReplayNvml(no_power, clock), clock=clock)


def test_nvml_errors_while_reading_become_sensor_errors_and_close_shuts_down() -> None:
    clock, module = replay()
    sensor = NvmlSensor(module=module, clock=clock)

    def lost(handle: int) -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    module.nvmlDeviceGetPowerUsage = lost
    with pytest.raises(SensorError, match="gpu0.*GPU is lost"):
        sensor.read()
    sensor.close()
    sensor.close()  # idempotent
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        module.nvmlDeviceGetCount()


def test_discover_lists_gpus_and_balances_init() -> None:
    clock, module = replay()
    gpus = discover(module)
    assert [(g.index, g.has_power, g.has_energy_counter) for g in gpus] == [(0, True, True), (1, True, False)]
    assert gpus[0].name == "Tesla V100-SXM2-16GB"
    assert present(module)
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        module.nvmlDeviceGetCount()


def test_byte_strings_from_older_bindings_are_decoded() -> None:
    class OldBindings(ReplayNvml):
        def nvmlDeviceGetName(self, handle: int) -> bytes:  # nvidia-ml-py < 11.515 returned bytes
            return super().nvmlDeviceGetName(handle).encode()

    clock = FakeClock()
    assert discover(OldBindings(RECORDING, clock))[1].name == "Tesla P100-PCIE-16GB"


def test_real_pynvml_without_a_gpu_is_absent_not_a_crash() -> None:
    if discover():
        sensor = NvmlSensor()  # a real GPU: the same code reads it
        assert sensor.info.provenance == VENDOR and sensor.read().values["gpu0.power_w"] > 0
        sensor.close()
        return
    assert not present()
    with pytest.raises(SensorError, match="NVML did not start"):
        NvmlSensor()


def test_windows_of_a_gpu_with_a_counter_use_it_and_others_integrate_power() -> None:
    """#11 item 5: the plan of gpu0 (Volta+) is its energy counter; gpu1 (P100, none) integrates power."""
    import numpy as np

    from sensors.energy import energy_plan, plan_windows

    clock, module = replay()
    sensor = NvmlSensor(module=module, clock=clock)
    info = sensor.info
    rows = []
    for k in range(0, 61):  # a 200 Hz poll over the 0.3 s recording; the daemon keeps fresh reads
        clock.t = T0 + k * 0.005
        sample = sensor.read()
        if sample.fresh:
            rows.append(sample)
    t = np.array([s.t for s in rows])
    columns = {c: np.array([s.values[c] for s in rows]) for c in info.channels}
    gpu0 = energy_plan(info.channels, info.counters, "gpu0.power_w", info.interval_averages)
    window, = plan_windows(gpu0, t, columns, [T0 + 0.10], [T0 + 0.20], interval_s=info.update_interval_s)
    assert (gpu0.method, window.energy_method) == ("counter", "counter")
    assert window.energy_j == pytest.approx(24.945, abs=1e-9)  # the counter difference, as the recording holds it
    gpu1 = energy_plan(info.channels, info.counters, "gpu1.power_w", info.interval_averages)
    assert gpu1.method == "power_integral" and gpu1.counter_channel is None
    other, = plan_windows(gpu1, t, columns, [T0 + 0.10], [T0 + 0.20], interval_s=info.update_interval_s)
    assert other.energy_method == "power_integral" and other.energy_j > 0
