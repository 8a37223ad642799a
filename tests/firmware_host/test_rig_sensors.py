"""#11 item 6: every registered sensor kind opens from a rig.toml [[sensors]] entry, and the configured channel is integrated.

The kinds open against what stands in for their hardware behind the same seams the real
code uses: fake sysfs trees (INA3221, RAPL), recorded NVML readings, a recorded
powermetrics stream played by a child process, a recorded trace, this machine's psutil,
and an emulated INA219 register map behind the SMBus seam for the I2C kinds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from device_runners.protocol import LatencyStats, Marker, RunReport
from firmware_host.board_daemon import BoardDaemon, open_sensor
from firmware_host.profile import ProfileOptions, profile_on_daemon
from firmware_host.rig import RigError, load_rig, parse_rig
from sensors import registry
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, from_power
from sensors.sysfs import write_tree

FIXTURES = Path(__file__).resolve().parents[1] / "sensors" / "fixtures"
NANO_IIO = "sys/devices/7000c400.i2c/i2c-6/6-0040/iio:device0"  # POM_5V_IN, POM_5V_GPU, POM_5V_CPU


def _tree(tmp_path: Path, fixture: str) -> Path:
    spec = json.loads((FIXTURES / fixture).read_text())
    return write_tree(tmp_path / fixture.split(".")[0], spec["files"], spec.get("symlinks"))


@pytest.fixture
def emulated_smbus(monkeypatch):
    """The I2C kinds' bus seam (`_smbus(bus)`) answers with an emulated INA219 at 0x40 drawing 3 W."""
    monkeypatch.setattr(registry, "_smbus", lambda bus: EmulatedI2CBus({0x40: EmulatedINA219(from_power(lambda t: 3.0, 5.0))}))


def _trace(tmp_path: Path) -> Path:
    from sensors.daemon import SamplingDaemon

    path = tmp_path / "recorded.ettrace"
    sensor = registry.create_sensor("emulated-ina219", rate_hz=500.0, waveform="constant:2.5")
    with SamplingDaemon([sensor], 500.0, record_path=path):
        time.sleep(0.3)
    return path


def _entries(tmp_path: Path) -> dict[str, str]:
    """One [[sensors]] table per registered kind, as a user would write it (TOML text)."""
    ina3221 = _tree(tmp_path, "sysfs_jetson_nano_ina3221x.json")
    rapl = _tree(tmp_path, "sysfs_intel_rapl_laptop.json")
    return {
        "emulated-ina219": 'params = { waveform = "constant:4.0" }',
        "ina219": "params = { bus = 1, address = 0x40, shunt_ohms = 0.1 }",
        "ina219-adafruit": "rate_hz = 200\nparams = { bus = 1, address = 0x40 }",
        "replay": f'params = {{ path = "{_trace(tmp_path)}", loop = true }}',
        "ina3221": f'channel = "POM_5V_GPU.power_w"\nparams = {{ root = "{ina3221}", emulated = true }}',
        "rapl": f'channel = "package-0.power_w"\nparams = {{ root = "{rapl}", zones = ["package-0", "psys"] }}',
        "nvml": f'channel = "gpu0.power_w"\nparams = {{ replay = "{FIXTURES / "nvml_recorded_readings.json"}" }}',
        "powermetrics": f'channel = "combined.power_w"\nparams = {{ replay = "{FIXTURES / "powermetrics_m1_100ms.plist-stream"}" }}',
        "psutil": 'channel = "cpu.util_pct"',
    }


def test_every_registered_kind_opens_from_a_rig_file(tmp_path: Path, emulated_smbus) -> None:
    entries = _entries(tmp_path)
    assert set(entries) == set(registry.KINDS)  # a new kind needs its line here
    text = '[[boards]]\nname = "b"\nhost = "local"\n'
    for kind, extra in entries.items():
        text += f'\n[[sensors]]\nname = "{kind}-s"\nkind = "{kind}"\nmeasures = "b"\n{extra}\n'
    path = tmp_path / "rig.toml"
    path.write_text(text)
    rig = load_rig(path)
    for spec in rig.sensors:
        sensor = open_sensor(spec, rig.board("b"))
        try:
            assert sensor.info.name == spec.name, spec.kind
            time.sleep(min(0.05, 2 * sensor.info.update_interval_s))
            sample = sensor.read()
            channel = spec.channel if spec.channel in sensor.info.channels else "power_w"
            assert channel in sensor.info.channels and channel in sample.values, spec.kind
        finally:
            sensor.close()


def test_rate_reaches_only_kinds_that_convert_at_a_chosen_rate() -> None:
    assert {k for k, e in registry.KINDS.items() if e.takes_rate()} == {"emulated-ina219", "ina219", "ina219-adafruit"}
    sensor = registry.open_sensor("emulated-ina219", {"waveform": "constant:1.0"}, name="x", rate_hz=250.0)
    assert sensor.info.name == "x" and sensor.info.update_interval_s <= 1 / 250.0  # converts at least at the rate asked
    with pytest.raises(registry.SensorConfigError, match="takes no parameter 'rate_hz'"):
        registry.create_sensor("psutil", rate_hz=10.0)  # the strict call: psutil has no rate of its own
    assert registry.open_sensor("psutil", rate_hz=10.0, name="ctx").info.name == "ctx"  # the factory passes it only where taken


def test_a_parameter_the_kind_does_not_take_is_named_in_the_rig_file() -> None:
    table = {"boards": [{"name": "b", "host": "local"}], "sensors": [{"name": "s", "kind": "rapl", "measures": "b", "params": {"bus": 1}}]}
    with pytest.raises(RigError, match=r"sensors\[0\].params: sensor 'rapl' takes no parameter 'bus' \(it accepts: root, zones"):
        parse_rig(table)
    table["sensors"][0].update(kind="nope", params={})
    with pytest.raises(RigError, match=r"sensors\[0\].kind: unknown sensor kind 'nope'"):
        parse_rig(table)


def _report(idle: tuple[float, float], block: tuple[float, float], runs: int) -> RunReport:
    stats = LatencyStats.of(np.full(runs, (block[1] - block[0]) / runs))
    markers = [Marker(kind, -1, int(t * 1e9), 0) for kind, t in
               (("idle_begin", idle[0]), ("idle_end", idle[1]), ("block_begin", block[0]), ("block_end", block[1]))]
    return RunReport("0" * 64, "onnx", "onnxruntime", "CPU", {}, 1, 8, runs, 0, stats, stats, runs / (block[1] - block[0]),
                     block[1] - block[0], 0.0, 0, idle[1] - idle[0], "", markers)


def test_an_ina3221_configured_on_its_second_rail_integrates_that_rail(tmp_path: Path) -> None:
    """The GPU rail (the second of three) draws 0.4 W idle and 3.4 W while the 'runner' works; the others stay constant."""
    root = _tree(tmp_path, "sysfs_jetson_nano_ina3221x.json")
    gpu_power = root / NANO_IIO / "in_power1_input"  # mW, the IIO layout's power of rail 1 (POM_5V_GPU)
    rig = parse_rig({
        "host": {"traces": str(tmp_path / "traces")},
        "boards": [{"name": "nano", "host": "local"}],
        "sensors": [{"name": "nano-rails", "kind": "ina3221", "measures": "nano", "channel": "POM_5V_GPU.power_w", "rate_hz": 500,
                     "params": {"root": str(root), "emulated": True}}],
    })
    spec, board = rig.sensor_for("nano"), rig.board("nano")
    sidecar = tmp_path / "model.json"
    sidecar.write_text(json.dumps({"seq_len": 8}))
    block_s, runs = 0.6, 10

    def runner(n: int, seed: int) -> RunReport:
        i0 = time.monotonic()
        time.sleep(0.4)
        i1 = time.monotonic()
        time.sleep(0.02)  # a sample is stamped as its read begins: one preempted (VM steal) before reading the file sees the later value
        b0 = time.monotonic()
        gpu_power.write_text("3400\n")  # the work: 3 W more on the GPU rail
        time.sleep(block_s)
        b1 = time.monotonic()
        gpu_power.write_text("400\n")
        return _report((i0, i1), (b0, b1), n)

    with BoardDaemon(spec, board, rig.traces) as link:
        assert link.channel == "POM_5V_GPU.power_w"
        m = profile_on_daemon(sidecar, link.daemon, spec.name, board, ProfileOptions(runs=runs, repeats=1, idle_s=0.4, min_coverage=0.5),  # CI VMs: steal gaps
                              0.0, 0.0, runner=runner, channel=link.channel)
    row = m["per_repeat"][0]
    assert m["channel"] == "POM_5V_GPU.power_w" and m["energy_method"] == "power_integral"
    assert row["idle_power_w"] == pytest.approx(0.4, abs=0.01)
    # (3.4 - 0.4) W over the block, per run; the sensor sees the step within one update (6.6 ms) of each edge
    assert m["energy_j_per_seq"] * runs == pytest.approx(3.0 * row["block_s"], rel=0.05)


def test_a_bare_power_channel_on_a_three_rail_sensor_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, "sysfs_jetson_nano_ina3221x.json")
    rig = parse_rig({"boards": [{"name": "nano", "host": "local"}],
                     "sensors": [{"name": "r", "kind": "ina3221", "measures": "nano", "params": {"root": str(root)}}]})
    with pytest.raises(RigError, match="ambiguous: the sensor has POM_5V_IN.power_w, POM_5V_GPU.power_w, POM_5V_CPU.power_w"):
        BoardDaemon(rig.sensor_for("nano"), rig.board("nano"), tmp_path / "traces")
