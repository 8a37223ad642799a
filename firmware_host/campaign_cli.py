"""`edgetran campaign run` and `edgetran store ...`: measurement campaigns and their store."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from firmware_host.host_cli import _rig, input_errors

campaign_app = typer.Typer(help="Measurement campaigns: many models on many boards, stored and resumable.", no_args_is_help=True)
store_app = typer.Typer(help="The one SQLite store (rigs, measurements, traces' index, ProTran campaigns): list, export.", no_args_is_help=True)

STORE_HELP = "SQLite store (default: $EDGETRAN_DB or ~/.local/share/edgetran/edgetran.db)."


def _store_path(store: Optional[Path]) -> Path:
    from firmware_host.store import default_db_path

    path = Path(store).expanduser() if store is not None else default_db_path()
    if not path.parent.is_dir():
        if store is not None:
            what = "is not a directory" if path.parent.exists() else "does not exist"
            raise typer.BadParameter(f"--store {store}: {path.parent} {what}")
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _scheduler(option: Optional[str], rig: Any, insecure: bool = False) -> Any:
    from firmware_host.dispatch import make_dispatch

    with input_errors():
        return make_dispatch(option if option is not None else rig.scheduler, rig_source=rig.source, insecure=insecure)


@campaign_app.command("run")
def run_campaign_command(
    files: List[Path] = typer.Argument(..., help="Model dictionaries (JSON) or exported artifacts."),
    name: str = typer.Option(..., "--name", help="Campaign name: the same name and configuration resumes it."),
    rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (default: the virtual rig)."),
    boards: Optional[List[str]] = typer.Option(None, "--board", help="Board to measure on (repeatable; default: every board)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler tls://HOST:PORT (default: the rig's; 'in-process')."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a plain tcp:// scheduler on a non-loopback address (anyone reaching it runs code on the workers)."),
    repeats: int = typer.Option(3, "--repeats", help="Repetitions per measurement (geometric means).", min=1),
    runs: int = typer.Option(20, "--runs", help="Timed runs per repetition.", min=1),
    warmup: int = typer.Option(3, "--warmup", help="Warm-up runs.", min=0),
    idle_s: float = typer.Option(1.0, "--idle-s", help="Idle window for the baseline, seconds.", min=0.0),
    seed: int = typer.Option(0, "--seed", help="Seed of the model weights and inputs."),
    min_coverage: Optional[float] = typer.Option(None, "--min-coverage", min=0.01, max=1.0,
                                                 help="Share of each block the sensor's samples must cover; below it a repeat is measured again, then the item fails (default: the rig sensor's min_coverage, else 0.95)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Measure every model on every board; store each measurement as it finishes; resume on rerun."""
    from firmware_host.campaign import plan, run_campaign
    from firmware_host.profile import ProfileOptions

    inventory = _rig(rig)
    db = _store_path(store)
    from firmware_host.store import check_store_writable

    with input_errors():
        check_store_writable(db)  # before the rig is dispatched to: a store that cannot take the results is refused now
    chosen = list(boards) if boards else [b.name for b in inventory.boards]
    with input_errors():
        for board in chosen:
            inventory.board(board)
        items = plan(files, chosen)
    options = ProfileOptions(runs=runs, warmup=warmup, idle_s=idle_s, repeats=repeats, seed=seed, min_coverage=min_coverage)
    dispatch = _scheduler(scheduler, inventory, insecure)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # systemd stop: finish the current item, keep the rest pending
    console = Console(stderr=True)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      disable=as_json, transient=False, console=console) as progress:
            task = progress.add_task(f"campaign {name}", total=len(items))

            def on_event(kind: str, info: dict) -> None:
                if kind == "skip":
                    progress.update(task, advance=info["count"], description=f"campaign {name}: {info['count']} already stored")
                elif kind == "start":
                    progress.update(task, description=f"{info['item'].board}: {Path(info['item'].file).name}")
                elif kind == "retry":
                    progress.console.print(f"retrying {Path(info['item'].file).name} on {info['item'].board}: {info['reason']}")
                elif kind == "done":
                    m = info["measurement"]
                    progress.update(task, advance=1, description=f"{info['item'].board}: {m['latency_s_per_seq'] * 1e3:.2f} ms/seq")
                elif kind == "failed":
                    progress.update(task, advance=1)
                    progress.console.print(f"FAILED {Path(info['item'].file).name} on {info['item'].board}: {info['reason']}")

            try:
                with input_errors():
                    summary = run_campaign(name, items, inventory, options, db, dispatch, on_event, stop)
            except KeyboardInterrupt:
                stop.set()
                typer.echo(f"interrupted: finished measurements are stored in {db}; rerun the same command to resume", err=True)
                raise typer.Exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        dispatch.close()
    result = {**summary.to_dict(), "store": str(db), "dispatch": dispatch.name}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"campaign {name}: {summary.measured} measured, {summary.already_done} already stored, "
                   f"{len(summary.failed)} failed of {summary.total} ({dispatch.name} dispatch; store {db})")
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.failed:
        raise typer.Exit(1)


@store_app.command("info")
def info_command(store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what the store holds: schema version, rigs, traces' index, measurement and ProTran campaigns."""
    from firmware_host.store import MeasurementStore

    db = _store_path(store)
    if db.is_dir():
        raise typer.BadParameter(f"{db}: is a directory, expected a store file")
    if not db.is_file():
        raise typer.BadParameter(f"{db}: no store there yet")
    with input_errors(), MeasurementStore(db, read_only=True) as handle:
        summary = handle.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    older = f" (migrated to {summary['migrates_to']} by the next command that writes it)" if "migrates_to" in summary else ""
    typer.echo(f"{summary['path']}: schema version {summary['schema_version']}{older}, {len(summary['rigs'])} rig(s) "
               f"({', '.join(summary['rigs']) or 'none'}), {summary['artifacts']} artifact(s), {len(summary['traces'])} indexed trace(s)")
    for c in summary["campaigns"]:
        counts = f"{c['measurements']} measurements, {c['failures']} failures" if c["kind"] == "measurement" else f"{c['evaluations']} evaluations"
        typer.echo(f"  {c['kind']} campaign {c['name']!r} ({c['status']}): {counts}")


@store_app.command("campaigns")
def campaigns_command(store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
                      as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the store's campaigns with their counts."""
    from firmware_host.store import MeasurementStore

    db = _store_path(store)
    if not db.is_file():
        raise typer.BadParameter(f"{db}: no store there yet")
    with input_errors(), MeasurementStore(db, read_only=True) as handle:
        rows = handle.summary()["campaigns"]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ("name", "kind", "status", "created", "measurements", "failures", "evaluations")
    table = Table(title=str(db))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console().print(table)


@store_app.command("export")
def export_command(
    campaign: str = typer.Option(..., "--campaign", help="Campaign to export."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write CSV here."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write JSON here (with failures)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Export a campaign (measurements, or a ProTran campaign's evaluations) to CSV and/or JSON (written atomically)."""
    from firmware_host.store import MeasurementStore

    if csv_path is None and json_path is None:
        raise typer.BadParameter("give --csv FILE and/or --json FILE")
    db = _store_path(store)
    if not db.is_file():
        raise typer.BadParameter(f"{db}: no store there yet")
    with input_errors(), MeasurementStore(db, read_only=True) as handle:
        protran = handle.campaign(campaign) is None and any(c["name"] == campaign for c in handle.protran_campaigns())
        for path, fmt in ((csv_path, "csv"), (json_path, "json")):
            if path is None:
                continue
            if protran:
                handle.export_protran(campaign, path, fmt)
                count = next(c["evaluations"] for c in handle.protran_campaigns() if c["name"] == campaign)
                typer.echo(f"wrote {count} evaluations of ProTran campaign {campaign!r} to {path}")
            else:
                handle.export(campaign, path, fmt)
                typer.echo(f"wrote {len(handle.measurements(campaign))} measurements of {campaign!r} to {path}")
