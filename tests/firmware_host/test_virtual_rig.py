"""The virtual rig: board power models from data, and power that follows the runner processes."""

from __future__ import annotations

import os
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
    assert rpi.active_w_per_core(750000) / rpi.active_w_per_core() == pytest.approx((0.825 / 0.88) ** 2 * 0.5)  # ~ V^2 f
    assert board_model("rpi4-1800").power_w(4, 1500000) == pytest.approx(6.4)  # load_w is at load_khz
    assert all(model.sources for model in models.values())
    with pytest.raises(ValueError, match="unknown board model 'rpi9'"):
        board_model("rpi9")


def test_supply_power_follows_a_busy_child_process():
    import psutil

    model = board_model("rpi4")
    sensor = virtual_board_sensor(model, 500.0, "v")
    try:
        time.sleep(0.1)
        idle = sensor.read().values["power_w"]
        child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
        time.sleep(0.4)
        cpu0, t0 = sum(psutil.Process(child.pid).cpu_times()[:2]), time.monotonic()
        readings = []
        while time.monotonic() - t0 < 0.5:
            readings.append(sensor.read().values["power_w"])
            time.sleep(0.002)
        share = (sum(psutil.Process(child.pid).cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)  # of one core (load elsewhere)
        child.wait()
        time.sleep(0.3)
        after = sensor.read().values["power_w"]
    finally:
        sensor.activity.stop()
    assert idle == pytest.approx(2.7, abs=0.05)
    busy = sum(readings) / len(readings)  # one busy core adds (6.4 - 2.7) / 4 = 0.925 W at full speed
    # Single readings are points: only a sanity check here (the energy tests hold the integral).
    assert 0.5 * model.active_w_per_core() * share <= busy - idle <= model.active_w_per_core() * 1.05
    assert after == pytest.approx(2.7, abs=0.05)
    assert sensor.info.provenance == "emulated"


SPIN_BLOCKS = """
import json, sys, time
def waited_s():  # time runnable but waiting for a CPU (this machine's other load), from schedstat's second field
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9
block_s, n, pause_s = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
time.sleep(0.3)
out = []
for _ in range(n):
    t0, c0, w0 = time.monotonic(), time.process_time(), waited_s()
    while time.monotonic() - t0 < block_s:
        pass
    out.append((t0, time.monotonic(), time.process_time() - c0, waited_s() - w0))
    time.sleep(pause_s)
print(json.dumps(out))
"""

STOLEN = 0.05  # share of the CPUs' time a hypervisor stole (/proc/stat steal) above which duty cycles cannot be judged


def _stolen_s() -> float:
    """Seconds of CPU time the hypervisor has stolen from this VM, all CPUs (/proc/stat 'steal'; 0 on bare metal)."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


LOADED = 0.25  # s waited for a CPU per CPU second: above it the sampler and the throttle share the CPUs with too much else

FIXED_WORK = """
import json, sys, time
def waited_s():  # time runnable but waiting for a CPU (this machine's other load), from schedstat's second field
    with open("/proc/self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9
loops, n = int(sys.argv[1]), int(sys.argv[2])
time.sleep(0.3)
out = []
for _ in range(n):
    t0, c0, w0 = time.monotonic(), time.process_time(), waited_s()
    x = 0
    for i in range(loops):
        x += i
    out.append((t0, time.monotonic(), time.process_time() - c0, waited_s() - w0))
    time.sleep(0.1)
print(json.dumps(out))
"""

COVERED = 0.95  # windows a measurement accepts (sampler not starved by the rest of this machine's load)


def _blocks(sensor, script: str, *args: str) -> list[tuple]:
    """Run a child's blocks under the real sampling daemon; (start, end, child CPU s, [waited s,] window figures) per block."""
    import json

    from sensors.daemon import SamplingDaemon

    with SamplingDaemon([sensor], 1000.0, ring_seconds=60) as daemon:
        time.sleep(0.3)
        idle_t0 = time.monotonic()
        time.sleep(0.25)
        out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=120).stdout
        time.sleep(0.1)
        idle = daemon.window(idle_t0, idle_t0 + 0.25)
        baseline_w = idle["energy_j"] / 0.25
        return [(*row, daemon.window(row[0], row[1], baseline_w=baseline_w)) for row in json.loads(out)]


@pytest.mark.timeout(180)
def test_block_energy_follows_child_cpu_time():
    """A child spinning 100 ms blocks: energy above idle = W-per-core x the child's own CPU time (covered windows)."""
    model = board_model("rpi4")
    sensor = virtual_board_sensor(model, 1000.0, "v")
    try:
        blocks = _blocks(sensor, SPIN_BLOCKS, "0.1", "10", "0.15")
    finally:
        sensor.activity.stop()
    contention = sorted(waited / cpu for _, _, cpu, waited, _ in blocks)[len(blocks) // 2]
    if contention > LOADED:
        pytest.skip(f"this machine is loaded: the child waited {contention:.2f} s for a CPU per CPU second")
    ratios = [w["energy_j"] / (model.active_w_per_core() * cpu) for _, _, cpu, _, w in blocks if w["coverage"] >= COVERED]
    if len(ratios) < 3:
        pytest.skip(f"the sampler was starved by this machine's load: {len(ratios)} of {len(blocks)} windows covered")
    # Live, the mean within 3% and single blocks within 7%: they spread with the sampler's
    # scheduling on a machine shared with other work (measured: 0.94-1.05, means 0.97-1.01);
    # tests/firmware_host/test_virtual_rig_energy.py holds each block to 2% on a simulated clock.
    # The old rig (psutil times polled every 10 ms) read 0.76-0.89 here (mean 0.84).
    assert abs(sum(ratios) / len(ratios) - 1) <= 0.03, ratios
    assert all(abs(r - 1) <= 0.07 for r in ratios), ratios


@pytest.mark.timeout(300)
def test_half_frequency_doubles_latency_and_energy_follows_the_v_f_table(tmp_path):
    """Set through the emulated cpufreq sysfs (the board-side driver code): 750 MHz on a 1.5 GHz Pi 4."""
    from device_runners.cpufreq import Cpufreq
    from device_runners.cpufreq_emulator import EmulatedCpufreq

    model = board_model("rpi4")
    sensor = virtual_board_sensor(model, 1000.0, "v", cpufreq_root=tmp_path / "sysfs")
    cpufreq = Cpufreq(EmulatedCpufreq(tmp_path / "sysfs"))
    results = {}
    stolen_before, wall_before = _stolen_s(), time.monotonic()
    try:
        for khz in (1500000, 750000):
            cpufreq.set_governor("policy0", "userspace")
            assert cpufreq.set_frequency("policy0", khz).setspeed_khz == khz
            results[khz] = _blocks(sensor, FIXED_WORK, "3000000", "4")
    finally:
        sensor.activity.stop()
    # The child runs (on a CPU, or runnable and waiting for one: this machine's other load)
    # for f / f_max of the wall time and is stopped for the rest, so a fixed-work block takes
    # f_max / f times as long as at the top frequency under the same load.
    running = {khz: sorted((cpu + waited) / (t1 - t0) for t0, t1, cpu, waited, _ in rows)[len(rows) // 2] for khz, rows in results.items()}
    contention = max(sorted(waited / cpu for _, _, cpu, waited, _ in rows)[len(rows) // 2] for rows in results.values())
    if contention > LOADED:  # the throttle thread itself then wakes late: its duty is only approximate
        pytest.skip(f"this machine is loaded: the child waited {contention:.2f} s for a CPU per CPU second")
    stolen = (_stolen_s() - stolen_before) / ((time.monotonic() - wall_before) * (os.cpu_count() or 1))
    if stolen > STOLEN:  # time the hypervisor takes is neither CPU time nor run-queue wait in the guest
        pytest.skip(f"this VM's hypervisor stole {stolen:.0%} of its CPU time during the blocks")
    assert running[1500000] == pytest.approx(1.0, abs=0.03)
    assert running[750000] == pytest.approx(0.5, abs=0.05)
    # Energy per unit of work: the board is busy f_max / f times as long at W-per-core(f) ~ V^2 f,
    # so it follows (V(f) / V(f_max))^2 = (0.825 / 0.88)^2 = 0.879. Stated tolerance 10%: the
    # duty is kept by a thread's timing (0.47-0.50 measured) and the stopped phases hold the
    # run phase's mean rate (measured here: x0.897 and x0.926 against 0.879).
    expected = model.active_w_per_core(750000) * 2.0 / model.active_w_per_core(1500000)
    per_cpu = {khz: [w["energy_j"] / cpu for _, _, cpu, _, w in rows if w["coverage"] >= COVERED] for khz, rows in results.items()}
    if min(len(v) for v in per_cpu.values()) < 2:
        pytest.skip(f"the sampler was starved by this machine's load: covered windows {[len(v) for v in per_cpu.values()]}")
    ratio = (sum(per_cpu[750000]) / len(per_cpu[750000])) / (sum(per_cpu[1500000]) / len(per_cpu[1500000]))
    assert ratio == pytest.approx(expected, rel=0.10)
