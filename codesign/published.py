"""Loaders for the published EdgeTran / ProTran data (BSD-3, Shikhar Tuli and Jha Lab).

The package ships copies of the authors' files under ``codesign/data/published``
(their LICENSE files beside them):

* ``protran/<device>/dataset.json``: per architecture (keyed by a hash) its model
  dictionary, model type, embedding (a JSON list stored as a string) and measured
  ``performance``: latency (s/seq), energy (J/seq) and peak power (W), the geometric
  means of repeated runs on the authors' rig (Sec. IV-B2);
  ``max_values.json``: the maxima the authors normalised by.
* ``glue/dataset.json``: 16 architectures pre-trained for up to 1M steps (three stopped
  earlier, the shortest at 182,500), with their pre-training steps and loss and their GLUE
  score (stored as a string, e.g. ``" 0.8124"``); three of them have no GLUE score
  (``null``), which loads as ``None``.

``max_values.json`` is loaded as the authors wrote it; it does not bound every value
of the dataset shipped beside it (``cpu_jetson-nano_b1_r1`` has a latency of 78.5
against a stored maximum of 49.5), so normalise by the data, not by it.

Device directories are named ``<processor>_<platform>_b<batch>_r<runs>``
(``gpu_a100_b128_r3``); the batch size is the one of Table II. The authors do not say
what ``r`` counts; it is kept as ``runs`` as written.

Records are parsed with ``json`` only: nothing stored is ever evaluated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from codesign.architecture import Architecture, ArchitectureError

DEVICE_NAME = re.compile(r"^(?P<processor>[a-z]+)_(?P<platform>[a-z0-9-]+)_b(?P<batch>\d+)_r(?P<runs>\d+)$")
LICENSE_FILES = ("LICENSE-edgetran.txt", "LICENSE-protran.txt")


class PublishedDataError(ValueError):
    """A published-data file that is missing or malformed, or an unknown device."""


def published_root() -> Path:
    """Directory of the packaged copies of the published data."""
    return Path(str(resources.files("codesign").joinpath("data", "published")))


@dataclass(frozen=True)
class PublishedDevice:
    """A platform of the authors' rig, parsed from its directory name."""

    name: str
    processor: str
    platform: str
    batch_size: int
    runs: int


@dataclass(frozen=True)
class Measurement:
    """One published hardware measurement of one architecture."""

    key: str
    architecture: Architecture
    model_type: str
    embedding: tuple[int, ...] | None
    latency_s: float
    energy_j: float
    peak_power_w: float


@dataclass(frozen=True)
class DeviceDataset:
    """All published measurements of one device, with the authors' normalisation maxima."""

    device: PublishedDevice
    measurements: tuple[Measurement, ...]
    max_latency_s: float
    max_energy_j: float
    max_peak_power_w: float


@dataclass(frozen=True)
class GlueRecord:
    """A fully pre-trained architecture with its pre-training loss and GLUE score."""

    key: str
    architecture: Architecture
    model_type: str
    embedding: tuple[int, ...] | None
    pretrain_steps: int
    pretrain_loss: float
    glue_score: float | None


def parse_device_name(name: str) -> PublishedDevice:
    """Split ``gpu_a100_b128_r3`` into processor, platform, batch size and runs."""
    match = DEVICE_NAME.match(name)
    if match is None:
        raise PublishedDataError(f"{name!r} is not a device name like 'cpu_rpi_b1_r1'")
    return PublishedDevice(
        name, match.group("processor"), match.group("platform"), int(match.group("batch")), int(match.group("runs"))
    )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise PublishedDataError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise PublishedDataError(f"{path}: not valid JSON ({error})") from None


def parse_stored_embedding(value: Any, where: str) -> tuple[int, ...] | None:
    """A stored embedding (a JSON list, or a string holding one) as a tuple of ints."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise PublishedDataError(f"{where}: embedding is not a JSON list: {value[:40]!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise PublishedDataError(f"{where}: embedding must be a list of integers")
    return tuple(value)


def _number(record: dict, key: str, where: str) -> float:
    try:
        return float(record[key])
    except (KeyError, TypeError, ValueError):
        raise PublishedDataError(f"{where}: missing or non-numeric {key!r}") from None


def _entries(path: Path) -> dict:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise PublishedDataError(f"{path}: expected an object keyed by architecture hash")
    return data


def _architecture(entry: Any, where: str) -> Architecture:
    if not isinstance(entry, dict) or "model_dict" not in entry:
        raise PublishedDataError(f"{where}: expected an object with a 'model_dict'")
    try:
        return Architecture.from_dict(entry["model_dict"])
    except ArchitectureError as error:
        raise PublishedDataError(f"{where}: model_dict {error}") from None


def list_devices(root: Path | None = None) -> list[PublishedDevice]:
    """Devices with published ProTran measurements, sorted by name."""
    base = (root or published_root()) / "protran"
    if not base.is_dir():
        raise PublishedDataError(f"{base}: no published ProTran data")
    return [parse_device_name(p.name) for p in sorted(base.iterdir()) if (p / "dataset.json").is_file()]


def load_device(name: str, root: Path | None = None) -> DeviceDataset:
    """All published measurements of one device (e.g. ``cpu_rpi_b1_r1``)."""
    root = root or published_root()
    known = [d.name for d in list_devices(root)]
    if name not in known:
        raise PublishedDataError(f"unknown published device {name!r} (known: {', '.join(known)})")
    device = parse_device_name(name)
    folder = root / "protran" / name
    measurements = []
    for key, entry in _entries(folder / "dataset.json").items():
        where = f"{name}/{key}"
        arch = _architecture(entry, where)
        perf = entry.get("performance")
        if not isinstance(perf, dict):
            raise PublishedDataError(f"{where}: missing 'performance'")
        measurements.append(
            Measurement(
                key=key,
                architecture=arch,
                model_type=str(entry.get("model_type", "")),
                embedding=parse_stored_embedding(entry.get("embedding"), where),
                latency_s=_number(perf, "latency", where),
                energy_j=_number(perf, "energy", where),
                peak_power_w=_number(perf, "peak_power", where),
            )
        )
    maxima = _read_json(folder / "max_values.json")
    return DeviceDataset(
        device=device,
        measurements=tuple(measurements),
        max_latency_s=_number(maxima, "max_latency", f"{name}/max_values.json"),
        max_energy_j=_number(maxima, "max_energy", f"{name}/max_values.json"),
        max_peak_power_w=_number(maxima, "max_peak_power", f"{name}/max_values.json"),
    )


def load_glue(root: Path | None = None) -> list[GlueRecord]:
    """The 16 fully pre-trained architectures with GLUE scores."""
    path = (root or published_root()) / "glue" / "dataset.json"
    records = []
    for key, entry in _entries(path).items():
        where = f"glue/{key}"
        arch = _architecture(entry, where)
        pretrain = entry.get("pretrain") or {}
        records.append(
            GlueRecord(
                key=key,
                architecture=arch,
                model_type=str(entry.get("model_type", "")),
                embedding=parse_stored_embedding(entry.get("embedding"), where),
                pretrain_steps=int(_number(pretrain, "steps", where)),
                pretrain_loss=_number(pretrain, "loss", where),
                glue_score=None if entry.get("glue") is None else _number(entry, "glue", where),
            )
        )
    return records
