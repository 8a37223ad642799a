"""CSV import/export of traces, and import of the published nvidia-smi JSON power log.

CSV samples: a header row ``t_s,power_w[,bus_v,current_a,...]`` (``t_s`` and a
``*power_w`` column are required; any other column is a channel named as written).
CSV events: ``t_s,event,label`` with ``event`` one of the trace event kinds.
Export writes the samples of one stream to ``F`` and its events to ``F`` with the
suffix ``.events.csv``; both through a temporary file and a rename. ``export_csv_file``
(what `trace export` uses) reads the trace file chunk by chunk, so an hour-long trace
is exported in bounded memory.

The published A100 trace (``traces/a100_bert_tiny_sst2_nvidia_smi.json``) is a JSON
list of ``{"time": s, "power_metrics": {"gpu": W}}``; each ``power_metrics`` key
becomes a ``<key>.power_w`` channel of an ``nvidia-smi`` stream whose update interval
is the median spacing of the log.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from sensors.base import EMULATED, VENDOR
from sensors.trace.format import EVENT_KINDS, Chunk, Event, Stream, StreamSpec, Trace, TraceError, TraceReader, new_header


def _atomic_csv(path: Path, header: list[str], rows) -> None:
    """Write a CSV through a temporary file and a rename (an OS error becomes one TraceError line)."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if path.is_dir():
            raise TraceError(f"{path}: is a directory (give a file name for the CSV)")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, path)
    except OSError as error:
        raise TraceError(f"{path}: cannot write ({error.strerror or error})") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # the name was never valid
            pass


def events_path(samples_csv: str | Path) -> Path:
    """Where the events of a samples CSV go: ``F.events.csv`` beside ``F``."""
    path = Path(samples_csv)
    return path.with_name(path.stem + ".events.csv")


def _sample_rows(t: np.ndarray, values: np.ndarray):
    """CSV rows (time, then one value per channel) of ``n`` samples, ``values`` channels x n."""
    for i, moment in enumerate(t.tolist()):
        yield [repr(moment)] + [repr(float(v)) for v in values[:, i]]


def _check_target(path: Path) -> None:
    """Refuse, before reading the trace, a CSV target (or its events sibling) that cannot be written."""
    from codesign.atomic_io import OutputPathError, check_output_file

    try:
        check_output_file(path)
        check_output_file(events_path(path))
    except OutputPathError as error:
        raise TraceError(str(error)) from None


def export_csv(trace: Trace, path: str | Path, stream: str | None = None) -> tuple[Path, Path]:
    """Write one stream's samples and the trace's events as CSV; return both paths."""
    path = Path(path)
    _check_target(path)
    data = trace.stream(stream)
    columns = np.vstack([data.values[c] for c in data.spec.channels]) if len(data.spec.channels) else np.empty((0, len(data.t)))
    _atomic_csv(path, ["t_s", *data.spec.channels], _sample_rows(data.t, columns))
    event_file = events_path(path)
    _atomic_csv(event_file, ["t_s", "event", "label"], ([repr(e.t), e.kind, e.label] for e in trace.events))
    return path, event_file


def export_csv_file(source: str | Path, path: str | Path, stream: str | None = None) -> dict:
    """Like :func:`export_csv` from a trace file, read chunk by chunk (samples in file order).

    Returns the two paths, the stream, its sample and event counts, and the reader's problems.
    """
    path = Path(path)
    _check_target(path)
    with TraceReader(source) as reader:
        names = [spec.name for spec in reader.specs]
        if stream is not None and stream not in names:
            raise TraceError(f"trace has no stream {stream!r} (streams: {', '.join(names)})")
        index = names.index(stream) if stream is not None else 0
        spec = reader.specs[index]
        events: list[Event] = []
        count = 0

        def rows():
            nonlocal count
            for item in reader.items():
                if isinstance(item, Chunk):
                    if item.stream == index:
                        count += len(item.t)
                        yield from _sample_rows(item.t, item.values)
                else:
                    events.extend(item)

        _atomic_csv(path, ["t_s", *spec.channels], rows())
        problems = list(reader.problems)
    events.sort(key=lambda e: e.t)
    event_file = events_path(path)
    _atomic_csv(event_file, ["t_s", "event", "label"], ([repr(e.t), e.kind, e.label] for e in events))
    return {"samples_csv": str(path), "events_csv": str(event_file), "stream": spec.name, "samples": count, "events": len(events), "problems": problems}


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TraceError(f"{where}: {text!r} is not a number") from None


def import_csv(path: str | Path, events: str | Path | None = None, name: str = "csv") -> Trace:
    """Build a trace from a samples CSV (and an optional events CSV)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise TraceError(f"{path}: empty file")
            header = [h.strip() for h in header]
            if not header or header[0] != "t_s":
                raise TraceError(f"{path}: first column must be t_s, got {header[:1]}")
            channels = header[1:]
            if not any(c.endswith("power_w") for c in channels):
                raise TraceError(f"{path}: needs a power_w column (got {', '.join(channels) or 'none'})")
            rows = []
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise TraceError(f"{path}:{line}: expected {len(header)} columns, got {len(row)}")
                rows.append([_float(v, f"{path}:{line}") for v in row])
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text CSV file") from None
    table = np.asarray(rows, dtype=float).reshape(len(rows), len(header))
    t = table[:, 0]
    if len(t) > 1 and np.any(np.diff(t) < 0):
        raise TraceError(f"{path}: t_s must not decrease (row {int(np.argmax(np.diff(t) < 0)) + 3})")
    interval = float(np.median(np.diff(t))) if len(t) > 1 else None
    spec = StreamSpec(name, tuple(channels), {"kind": "csv-import", "name": name, "update_interval_s": interval, "provenance": EMULATED})
    stream = Stream(spec, t, {c: table[:, i + 1] for i, c in enumerate(channels)})
    event_list = _read_events(Path(events)) if events else []
    return Trace(new_header([spec], source=str(path)), {name: stream}, event_list)


def _read_events(path: Path) -> list[Event]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if header[:3] != ["t_s", "event", "label"]:
                raise TraceError(f"{path}: events CSV needs the header t_s,event,label")
            result = []
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < 2 or row[1] not in EVENT_KINDS:
                    raise TraceError(f"{path}:{line}: event must be one of {', '.join(EVENT_KINDS)}")
                result.append(Event(_float(row[0], f"{path}:{line}"), row[1], row[2] if len(row) > 2 else ""))
            return result
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None


def import_nvidia_smi_json(path: str | Path) -> Trace:
    """Import the published ``[{"time": s, "power_metrics": {...}}]`` nvidia-smi power log."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise TraceError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) and "power_metrics" in r for r in records):
        raise TraceError(f"{path}: expected a JSON list of {{'time', 'power_metrics'}} records")
    keys = sorted({key for r in records for key in r["power_metrics"]})
    t = np.array([float(r["time"]) for r in records])
    values = {f"{k}.power_w": np.array([float(r["power_metrics"].get(k, math.nan)) for r in records]) for k in keys}
    interval = float(np.median(np.diff(t))) if len(t) > 1 else None
    spec = StreamSpec(
        "nvidia-smi",
        tuple(values),
        {"kind": "nvidia-smi", "name": "nvidia-smi", "update_interval_s": interval, "precision": {c: 0.01 for c in values}, "provenance": VENDOR},
    )
    return Trace(new_header([spec], source=str(path)), {"nvidia-smi": Stream(spec, t, values)}, [])


def import_any(path: str | Path, events: str | Path | None = None) -> Trace:
    """Import a CSV samples file or a JSON nvidia-smi power log, by content."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(64).lstrip()
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    if start.startswith(b"["):
        return import_nvidia_smi_json(path)
    return import_csv(path, events)
