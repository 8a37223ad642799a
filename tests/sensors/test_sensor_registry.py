"""The registry builds every kind by name, and the daemon records a vendor source like an INA219."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sensors.base import EMULATED, SensorConfigError
from sensors.daemon import SamplingDaemon
from sensors.registry import KINDS, create_sensor, list_kinds
from sensors.sysfs import write_tree
from sensors.trace.format import read_trace

FIXTURES = Path(__file__).parent / "fixtures"


def test_every_kind_is_listed_with_presence():
    rows = {row["kind"]: row for row in list_kinds()}
    assert set(rows) == {"emulated-ina219", "ina219", "ina219-adafruit", "replay", "ina3221", "rapl", "nvml", "powermetrics", "psutil"}
    assert rows["emulated-ina219"]["present"] and rows["psutil"]["present"]
    assert rows["emulated-ina219"]["provenance"] == EMULATED


def test_unknown_kind_and_parameter_are_named():
    with pytest.raises(SensorConfigError, match="unknown sensor kind 'ina999'"):
        create_sensor("ina999")
    with pytest.raises(SensorConfigError, match="sensor 'emulated-ina219'.*'volts'"):
        create_sensor("emulated-ina219", volts=5)


def test_jetson_rails_from_a_fake_tree_are_recorded_by_the_daemon(tmp_path: Path):
    spec = json.loads((FIXTURES / "sysfs_jetson_nano_ina3221x.json").read_text())
    root = write_tree(tmp_path / "sys", spec["files"], spec.get("symlinks"))
    sensor = create_sensor("ina3221", root=str(root), emulated=True)
    assert any(c.endswith(".power_w") for c in sensor.info.channels)
    path = tmp_path / "jetson.ettrace"
    with SamplingDaemon([sensor], 200.0, record_path=path):
        time.sleep(0.3)
    stream = read_trace(path).stream()
    assert stream.spec.sensor["kind"] == "ina3221"
    assert len(stream.t) >= 1
    assert set(stream.spec.channels) == set(sensor.info.channels)


def test_kinds_have_descriptions():
    assert all(entry.description for entry in KINDS.values())
