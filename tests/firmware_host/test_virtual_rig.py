"""The virtual rig: board power models from data, and power that follows the runner processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from firmware_host.virtual_rig import board_model, board_models, virtual_board_sensor


def test_board_models_have_sources_and_scale_with_frequency():
    models = board_models()
    assert {"rpi4", "jetson-nano", "x86-host"} <= set(models)
    rpi = board_model("rpi4")
    assert rpi.power_w(0) == pytest.approx(2.7)
    assert rpi.power_w(4) == pytest.approx(6.4)
    assert rpi.power_w(8) == pytest.approx(6.4)  # capped at the board's cores
    assert rpi.power_w(4, 600000) < rpi.power_w(4, 1200000) < rpi.power_w(4)
    assert all(model.sources for model in models.values())
    with pytest.raises(ValueError, match="unknown board model 'rpi9'"):
        board_model("rpi9")


def test_supply_power_follows_a_busy_child_process():
    sensor = virtual_board_sensor(board_model("rpi4"), 500.0, "v")
    try:
        time.sleep(0.1)
        idle = sensor.read().values["power_w"]
        child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
        time.sleep(0.9)
        busy = sensor.read().values["power_w"]
        child.wait()
        time.sleep(0.3)
        after = sensor.read().values["power_w"]
    finally:
        sensor.activity.stop()
    assert idle == pytest.approx(2.7, abs=0.05)
    assert busy > idle + 0.4  # one busy core adds (6.4 - 2.7) / 4 = 0.925 W at full speed
    assert after == pytest.approx(2.7, abs=0.05)
    assert sensor.info.provenance == "emulated"
