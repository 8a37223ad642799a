"""The sensors room stands alone: a Pi runs it with nothing else of the project installed."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "sensors.base", "sensors.daemon", "sensors.energy", "sensors.live", "sensors.registry", "sensors.replay",
    "sensors.cli", "sensors.ina219.driver", "sensors.ina219.emulator", "sensors.ina219.adafruit_adapter",
    "sensors.ina219.activity", "sensors.trace.format", "sensors.trace.exchange", "sensors.trace.records",
    "sensors.trace.rotation", "sensors.trace.streaming", "sensors.ina3221", "sensors.rapl",
    "sensors.nvml", "sensors.powermetrics", "sensors.psutil_source",
]


def test_sensor_modules_import_no_other_room_and_no_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('codesign', 'firmware_host', 'device_runners', 'sim', 'torch', 'scipy'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""
