"""Measurement campaigns: every (model, board) pair measured once, stored, resumable.

A campaign is a named list of items (a model file on a board), each measured with the
same :class:`~firmware_host.profile.ProfileOptions` and stored in the SQLite store
(:mod:`firmware_host.store`) the moment it finishes, under the key (model key, board,
runtime, device, batch, repeat 0); the measurement's own repeats are its geometric mean.

* **Resume**: running the same campaign again (same name and configuration) measures
  only the keys the store does not hold; earlier failures are tried again.
* **Failures**: a measurement that raises (a board that disconnects or times out, a
  runtime error) is retried once; a second failure is recorded with its reason and the
  campaign goes on with the next item.
* **Dispatch**: in-process, items run one after another; through dask, each board has
  its own queue and thread, so boards measure concurrently and one board never runs two
  protocols at once. Only the main thread writes to the store (the results come back
  through a queue), so a worker that dies can lose at most the measurement it was making.
* **Interruption**: Ctrl-C stops taking new items; finished measurements stay stored,
  the campaign is left 'running' and the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from firmware_host.profile import ProfileOptions, profile_artifact, resolve_artifact, save_measurement
from firmware_host.store import MeasurementKey, MeasurementStore

ATTEMPTS = 2  # a failed measurement is retried once, then recorded as failed


@dataclass(frozen=True)
class CampaignItem:
    """One model file on one board."""

    file: str
    board: str
    model_key: str  # sha256 of the canonical model dictionary, or the artifact's sha256


@dataclass
class CampaignSummary:
    """What a campaign run did."""

    campaign: str
    total: int
    already_done: int
    measured: int
    failed: list[dict]
    interrupted: bool = False

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def model_key(file: str | Path) -> str:
    """A stable key of a model file: an artifact's sha256, or sha256 of the canonical JSON model dictionary."""
    path = Path(file)
    from device_runners.artifact import ArtifactError, read_artifact

    try:
        return read_artifact(path).meta["sha256"]
    except (ArtifactError, OSError, KeyError):
        pass
    try:
        model = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}: neither an artifact (no sidecar) nor a JSON model dictionary") from None
    return hashlib.sha256(json.dumps(model, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan(files: Sequence[str | Path], boards: Sequence[str]) -> list[CampaignItem]:
    """Every file on every board, boards interleaved (file-major order)."""
    items = []
    for file in files:
        key = model_key(file)
        items.extend(CampaignItem(str(file), board, key) for board in boards)
    return items


def item_key(item: CampaignItem, board: Any, options: ProfileOptions) -> MeasurementKey:
    """The store key of an item on its board."""
    return MeasurementKey(item.model_key, board.name, options.runtime or board.runtime, board.device, options.batch or board.batch, 0)


RESUMABLE_OPTIONS = ("run_timeout_s", "min_coverage")  # limits and quality gates, not what is measured: a resume may change them


def campaign_config(items: Sequence[CampaignItem], rig: Any, options: ProfileOptions) -> dict:
    """What must not change between a campaign and its resumption."""
    return {"kind": "measurement campaign", "items": [[i.model_key, i.board] for i in items], "rig": rig.source,
            "options": {k: v for k, v in asdict(options).items() if k not in RESUMABLE_OPTIONS}}


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split()) or 'no message'}"


def run_campaign(
    name: str,
    items: Sequence[CampaignItem],
    rig: Any,
    options: ProfileOptions,
    store_path: str | Path,
    dispatch: Any,
    on_event: Optional[Callable[[str, dict], None]] = None,
    stop: Optional[threading.Event] = None,
) -> CampaignSummary:
    """Measure every pending item, store each as it finishes, retry failures once; return a summary.

    ``on_event(kind, info)`` reports progress: ``"skip"`` (already stored), ``"start"``,
    ``"retry"``, ``"done"``, ``"failed"``.
    """
    notify = on_event or (lambda kind, info: None)
    stop = stop or threading.Event()
    boards = {b.name: b for b in rig.boards}
    for item in items:
        if item.board not in boards:
            raise ValueError(f"campaign {name!r}: no board {item.board!r} in the rig (boards: {', '.join(boards)})")
    with MeasurementStore(store_path) as store:
        store.add_rig(rig.source, rig.to_dict())
        store.start_campaign(name, campaign_config(items, rig, options))
        keyed = [(item, item_key(item, boards[item.board], options)) for item in items]
        pending_keys = set(store.pending(name, [k for _, k in keyed]))
        todo = [(item, key) for item, key in keyed if key in pending_keys]
        summary = CampaignSummary(name, len(items), len(items) - len(todo), 0, [])
        notify("skip", {"count": summary.already_done})
        results: queue.Queue = queue.Queue()
        lanes: dict[str, list] = {}
        for item, key in todo:
            lanes.setdefault(item.board if dispatch.concurrent_boards else "all", []).append((item, key))
        threads = [threading.Thread(target=_lane, args=(lane, rig, boards, options, dispatch, results, stop), name=f"campaign-{lane_name}", daemon=True)
                   for lane_name, lane in lanes.items()]
        for thread in threads:
            thread.start()
        finished = 0
        try:
            while finished < len(threads):
                kind, item, key, payload = results.get()
                if kind == "lane-end":
                    finished += 1
                elif kind == "start" or kind == "retry":
                    notify(kind, {"item": item, "key": key, "reason": payload})
                elif kind == "done":
                    save_measurement(store, name, key, payload)
                    summary.measured += 1
                    notify("done", {"item": item, "key": key, "measurement": payload})
                else:  # failed
                    store.add_failure(name, key, payload)
                    summary.failed.append({"file": item.file, "board": item.board, "reason": payload})
                    notify("failed", {"item": item, "key": key, "reason": payload})
        except KeyboardInterrupt:
            stop.set()
            summary.interrupted = True
            raise
        finally:
            if summary.interrupted or stop.is_set():
                summary.interrupted = True
            else:
                store.set_status(name, "finished" if not summary.failed else "failed")
    return summary


def _lane(lane: list, rig: Any, boards: dict, options: ProfileOptions, dispatch: Any, results: queue.Queue, stop: threading.Event) -> None:
    """Measure a lane's items in order; every outcome goes to the results queue."""
    try:
        for item, key in lane:
            if stop.is_set():
                break
            board = boards[item.board]
            results.put(("start", item, key, None))
            for attempt in range(ATTEMPTS):
                try:
                    sidecar = resolve_artifact(item.file, options.runtime or board.runtime, options.seq_len or board.seq_len,
                                               options.batch or board.batch, options.seed)
                    measurement = profile_artifact(sidecar, rig, board, options, dispatch)
                except Exception as error:  # noqa: BLE001 - any failure of one measurement is recorded, the campaign goes on
                    if attempt + 1 < ATTEMPTS and not stop.is_set():
                        results.put(("retry", item, key, _reason(error)))
                        continue
                    results.put(("failed", item, key, _reason(error)))
                else:
                    results.put(("done", item, key, measurement))
                break
    finally:
        results.put(("lane-end", None, None, None))
