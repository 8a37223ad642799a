"""NVIDIA GPUs through NVML (the ``pynvml`` module of the nvidia-ml-py package).

Channels per GPU N: ``gpuN.power_w`` from ``nvmlDeviceGetPowerUsage`` (mW), always;
``gpuN.energy_j`` from ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver
was loaded; Volta and newer) where the GPU supports it, as a cumulative counter. An
energy counter beats integrated power: NVML's power reading updates only every
~10-100 ms, and on Ampere (except GA100) and newer it is a 1 s average.

The NVML module is injectable: the default is the real ``pynvml``; ``ReplayNvml``
(in ``sensors.nvml_replay``) replays recorded readings through the same calls, so tests
and emulated rigs run this module's code unchanged.

Update interval: ``DEFAULT_UPDATE_INTERVAL_S`` (100 ms, the slow end of what NVML
power readings do) unless given, or measured at start with ``detect_interval=True``:
``estimate_power_update_interval`` polls the power reading every 1 ms and takes the
median time between changes of its value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Sequence

from sensors.base import EMULATED, VENDOR, Clock, Sample, Sensor, SensorConfigError, SensorError, SensorInfo
from sensors.update_rate import DEFAULT_POLL_S, FreshnessTracker, estimate_update_interval, estimate_update_intervals

KIND = "nvml"
DEFAULT_UPDATE_INTERVAL_S = 0.1  # NVML power updates every ~10-100 ms; the slow end is the safe default, s
DETECT_DURATION_S = 1.0  # how long detection polls the power reading, s
MILLI = 1e-3  # resolution of mW and mJ readings, in W and J
MW_PER_W = 1000
MJ_PER_J = 1000
POWER_NOTE = (
    "nvmlDeviceGetPowerUsage: instantaneous on GA100 and older, a 1 s average on newer GPUs; "
    "+/-5% on Fermi/Kepler"
)


def load_nvml() -> ModuleType:
    """The real ``pynvml`` module, or a SensorError saying which package provides it."""
    try:
        import pynvml
    except ImportError as exc:
        raise SensorError("NVML bindings missing: install nvidia-ml-py (the 'runner' extra)") from exc
    return pynvml


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _is_not_supported(nvml: Any, exc: BaseException) -> bool:
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    return (cls is not None and isinstance(exc, cls)) or getattr(exc, "value", None) == getattr(
        nvml, "NVML_ERROR_NOT_SUPPORTED", 3
    )


@dataclass(frozen=True)
class NvmlGpu:
    """One GPU as NVML reports it, and which counters it offers."""

    index: int
    name: str
    uuid: str
    has_power: bool
    has_energy_counter: bool


def _probe(nvml: Any, index: int) -> tuple[Any, NvmlGpu]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    supported = {}
    for key, call in (("power", nvml.nvmlDeviceGetPowerUsage), ("energy", nvml.nvmlDeviceGetTotalEnergyConsumption)):
        try:
            call(handle)
            supported[key] = True
        except nvml.NVMLError as exc:
            if not _is_not_supported(nvml, exc):
                raise
            supported[key] = False
    gpu = NvmlGpu(
        index,
        _text(nvml.nvmlDeviceGetName(handle)),
        _text(nvml.nvmlDeviceGetUUID(handle)),
        supported["power"],
        supported["energy"],
    )
    return handle, gpu


def discover(module: Any = None) -> list[NvmlGpu]:
    """The GPUs NVML can see ([] where NVML, its library or the driver is missing)."""
    try:
        nvml = module if module is not None else load_nvml()
    except SensorError:
        return []
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return []
    try:
        return [_probe(nvml, i)[1] for i in range(nvml.nvmlDeviceGetCount())]
    except nvml.NVMLError:
        return []
    finally:
        nvml.nvmlShutdown()


def present(module: Any = None) -> bool:
    """Whether NVML reports at least one GPU with a power reading."""
    return any(gpu.has_power for gpu in discover(module))


def estimate_power_update_interval(
    nvml: Any,
    handle: Any,
    *,
    duration_s: float = DETECT_DURATION_S,
    poll_s: float = DEFAULT_POLL_S,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """How often this GPU's power reading changes, s (median gap between changes); None if it never does."""
    return estimate_update_interval(
        lambda: nvml.nvmlDeviceGetPowerUsage(handle), duration_s=duration_s, poll_s=poll_s, clock=clock, sleep=sleep
    )


class NvmlSensor(Sensor):
    """Power (and, Volta+, energy counters) of NVIDIA GPUs; provenance VENDOR."""

    def __init__(
        self,
        indices: Sequence[int] | None = None,
        *,
        module: Any = None,
        name: str = "nvml",
        update_interval_s: float | None = None,
        detect_interval: bool = False,
        detect_duration_s: float = DETECT_DURATION_S,
        emulated: bool | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self._nvml = module if module is not None else load_nvml()
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise SensorError(f"NVML did not start: {exc} (no NVIDIA driver, or libnvidia-ml.so.1 not found)") from exc
        self._open = True
        try:
            self._setup(indices, name, update_interval_s, detect_interval, detect_duration_s, emulated, sleep)
        except BaseException:
            self.close()
            raise

    def _setup(
        self,
        indices: Sequence[int] | None,
        name: str,
        update_interval_s: float | None,
        detect_interval: bool,
        detect_duration_s: float,
        emulated: bool | None,
        sleep: Callable[[float], None],
    ) -> None:
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            wanted = list(range(count)) if indices is None else list(indices)
            bad = [i for i in wanted if not 0 <= i < count]
            if bad:
                raise SensorConfigError(f"no GPU with index {bad}; NVML sees {count}")
            probed = [_probe(nvml, i) for i in wanted]
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError as exc:
            raise SensorError(f"NVML query failed: {exc}") from exc
        skipped = {f"gpu{g.index}": "power reading not supported" for _, g in probed if not g.has_power}
        if skipped and indices is not None:
            raise SensorError(f"NVML cannot read the power of {sorted(skipped)}")
        self._gpus = [(h, g) for h, g in probed if g.has_power]
        if not self._gpus:
            raise SensorError("no GPU with an NVML power reading")
        source = "given"
        if update_interval_s is None:
            update_interval_s, source = DEFAULT_UPDATE_INTERVAL_S, "default (NVML power updates every ~10-100 ms)"
            if detect_interval:
                reads = [(lambda h=h: nvml.nvmlDeviceGetPowerUsage(h)) for h, _ in self._gpus]
                try:
                    found = estimate_update_intervals(
                        reads, duration_s=detect_duration_s, clock=self.clock, sleep=sleep
                    )
                except nvml.NVMLError as exc:
                    raise SensorError(f"NVML power polling failed while detecting the update interval: {exc}") from exc
                measured = [f for f in found if f is not None]
                if measured:
                    update_interval_s, source = max(measured), "detected from power-reading changes"
                else:
                    source = "default: power reading did not change during detection"
        elif update_interval_s <= 0:
            raise SensorConfigError(f"update_interval_s must be > 0, got {update_interval_s}")
        self._freshness = FreshnessTracker(update_interval_s)
        channels: list[str] = []
        precision: dict[str, float] = {}
        counters: list[str] = []
        for _, gpu in self._gpus:
            channels.append(f"gpu{gpu.index}.power_w")
            precision[f"gpu{gpu.index}.power_w"] = MILLI
            if gpu.has_energy_counter:
                channels.append(f"gpu{gpu.index}.energy_j")
                precision[f"gpu{gpu.index}.energy_j"] = MILLI
                counters.append(f"gpu{gpu.index}.energy_j")
        if emulated is None:
            emulated = bool(getattr(nvml, "EMULATED", False))
        self._info = SensorInfo(
            kind=KIND,
            name=name,
            channels=tuple(channels),
            update_interval_s=update_interval_s,
            precision=precision,
            provenance=EMULATED if emulated else VENDOR,
            counters=tuple(counters),
            details={
                "driver_version": driver,
                "gpus": {
                    f"gpu{g.index}": {"name": g.name, "uuid": g.uuid, "energy_counter": g.has_energy_counter}
                    for _, g in self._gpus
                },
                "skipped": skipped,
                "update_interval_source": source,
                "power_note": POWER_NOTE,
            },
        )

    @property
    def info(self) -> SensorInfo:
        """Per-GPU power (and energy counter) channels, update interval, 1 mW / 1 mJ resolution."""
        return self._info

    def read(self) -> Sample:
        """Power of every GPU and, where supported, its total energy counter."""
        nvml = self._nvml
        t = self.clock()
        values: dict[str, float] = {}
        raw: list[int] = []
        for handle, gpu in self._gpus:
            try:
                power_mw = nvml.nvmlDeviceGetPowerUsage(handle)
                values[f"gpu{gpu.index}.power_w"] = power_mw / MW_PER_W
                raw.append(power_mw)
                if gpu.has_energy_counter:
                    energy_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                    values[f"gpu{gpu.index}.energy_j"] = energy_mj / MJ_PER_J
                    raw.append(energy_mj)
            except nvml.NVMLError as exc:
                raise SensorError(f"NVML read of gpu{gpu.index} ({gpu.name}) failed: {exc}") from exc
        return Sample(t, values, fresh=self._freshness.fresh(t, tuple(raw)))

    def close(self) -> None:
        """Release NVML (once)."""
        if getattr(self, "_open", False):
            self._open = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
