"""A pynvml stand-in that replays recorded NVML readings (tests, emulated rigs).

A recording is JSON:

    {"driver_version": "535.183.01",
     "devices": [{"name": "...", "uuid": "GPU-...",
                  "not_supported": ["nvmlDeviceGetTotalEnergyConsumption"],
                  "updates": [{"t": 0.0, "power_mw": 41250, "energy_mj": 1234567}, ...]}]}

``t`` is seconds after ``nvmlInit``; a call returns the latest update at or before the
replay clock (NVML's readings are step functions that change at the GPU's update
period), and the last update holds after the recording ends. A function listed in
``not_supported`` raises pynvml's own ``NVMLError_NotSupported``, so the code under
test catches exactly what it catches on a real GPU. Errors and constants are those of
the real ``pynvml`` module.
"""

from __future__ import annotations

import bisect
import json
import time
from pathlib import Path
from typing import Any, Mapping

import pynvml

from sensors.base import Clock


class ReplayNvml:
    """Replays recorded power and energy readings through the pynvml calls NvmlSensor uses."""

    EMULATED = True
    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_Uninitialized = pynvml.NVMLError_Uninitialized
    NVMLError_InvalidArgument = pynvml.NVMLError_InvalidArgument
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED

    def __init__(self, recording: Mapping[str, Any], clock: Clock = time.monotonic) -> None:
        self.recording = recording
        self.devices = list(recording["devices"])
        self.clock = clock
        self._t0: float | None = None
        self._init_count = 0
        self._times = [[float(u["t"]) for u in d.get("updates", [])] for d in self.devices]

    @classmethod
    def from_file(cls, path: str | Path, clock: Clock = time.monotonic) -> "ReplayNvml":
        """Load a JSON recording."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), clock)

    # library lifetime -------------------------------------------------------------------
    def nvmlInit(self) -> None:
        """Start the replay clock on the first init (NVML counts inits like the real library)."""
        if self._init_count == 0 and self._t0 is None:
            self._t0 = self.clock()
        self._init_count += 1

    def nvmlShutdown(self) -> None:
        """Balance one nvmlInit."""
        self._check()
        self._init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        """The recorded driver version."""
        self._check()
        return str(self.recording.get("driver_version", "replay"))

    # devices ----------------------------------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:
        """Number of recorded devices."""
        self._check()
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        """The handle is the index."""
        self._check()
        if not 0 <= index < len(self.devices):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        """Recorded product name."""
        return str(self._device(handle, "nvmlDeviceGetName")["name"])

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        """Recorded UUID."""
        return str(self._device(handle, "nvmlDeviceGetUUID").get("uuid", f"GPU-replay-{handle}"))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        """Power in mW at the replay time."""
        return int(self._update(handle, "nvmlDeviceGetPowerUsage")["power_mw"])

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        """Energy in mJ since driver load at the replay time."""
        return int(self._update(handle, "nvmlDeviceGetTotalEnergyConsumption")["energy_mj"])

    # internals --------------------------------------------------------------------------
    def _check(self) -> None:
        if self._init_count <= 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def _device(self, handle: int, function: str) -> Mapping[str, Any]:
        self._check()
        device = self.devices[handle]
        if function in device.get("not_supported", ()):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return device

    def _update(self, handle: int, function: str) -> Mapping[str, Any]:
        device = self._device(handle, function)
        assert self._t0 is not None
        elapsed = self.clock() - self._t0
        times = self._times[handle]
        i = bisect.bisect_right(times, elapsed + 1e-12) - 1
        return device["updates"][max(i, 0)]
