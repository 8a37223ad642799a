"""`edgetran profile` and `edgetran rig ...`: the bench host's commands.

Bad input is raised as ``typer.BadParameter`` (one line, exit 2 at the entry point).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


rig_app = typer.Typer(help="The rig inventory: boards, sensors, how the host reaches them.", no_args_is_help=True)


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn the host's (and the rooms' it calls) input errors into one-line usage errors."""
    try:
        yield
    except (ValueError, RuntimeError, OSError, TimeoutError) as error:
        raise typer.BadParameter(" ".join(str(error).split())) from None


def _rig(path: Optional[Path]):
    from firmware_host.rig import load_rig

    with input_errors():
        return load_rig(path)


@rig_app.command("show")
def show(rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (default: the virtual rig)."), as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the rig's boards and sensors."""
    from firmware_host.virtual_rig import board_models

    inventory = _rig(rig)
    models = [{"model": m.name, "description": m.description, "idle_w": m.idle_w, "load_w": m.load_w, "cores": m.cores,
               "frequencies_khz": list(m.frequencies_khz)} for m in board_models().values()]
    if as_json:
        typer.echo(json.dumps({**inventory.to_dict(), "board_models": models}, indent=2))
        return
    boards = Table(title=f"Boards ({inventory.source}{', emulated' if inventory.emulated else ''})")
    for column in ("name", "host", "model", "runtime", "device", "batch", "seq len", "cpufreq policy"):
        boards.add_column(column)
    for b in inventory.boards:
        boards.add_row(b.name, b.host, str(b.model or "-"), b.runtime, b.device, str(b.batch), str(b.seq_len), str(b.cpufreq_policy or "-"))
    sensors = Table(title="Sensors")
    for column in ("name", "kind", "measures", "runs on", "channel", "rate Hz"):
        sensors.add_column(column)
    for s in inventory.sensors:
        sensors.add_row(s.name, s.kind, s.measures, s.runs_on, s.channel, f"{s.rate_hz:g}")
    catalogue = Table(title="Board models of virtual boards (model = NAME in rig.toml; EMULATED power)")
    for column in ("model", "cores", "idle W", "load W", "description"):
        catalogue.add_column(column)
    for m in models:
        catalogue.add_row(m["model"], str(m["cores"]), f"{m['idle_w']:g}", f"{m['load_w']:g}", m["description"])
    console = Console()
    console.print(boards)
    console.print(sensors)
    console.print(catalogue)


@rig_app.command("check")
def check(
    rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (default: the virtual rig)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler to find remote boards' workers (default: the rig's)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a plain tcp:// scheduler on a non-loopback address (anyone reaching it runs code on the workers)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Reach every board (its runtime here, or its dask worker) and every sensor (here, or its daemon); report what is missing."""
    inventory = _rig(rig)
    address = scheduler if scheduler is not None else inventory.scheduler
    if address not in (None, "", "in-process"):
        from firmware_host.dispatch import check_scheduler_address

        with input_errors():
            check_scheduler_address(address, insecure)  # plain tcp:// off loopback: exit 2 unless --insecure
    rows = [*_check_boards(inventory, address, insecure), *_check_sensors(inventory)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            typer.echo(f"{'ok  ' if row['ok'] else 'MISSING'} {row['what']}: {row['detail']}")
    if not all(row["ok"] for row in rows):
        raise typer.Exit(1)


def _check_boards(inventory, scheduler: str, insecure: bool = False) -> list[dict]:
    """One row per board: its runtime on this machine, or its worker through the scheduler."""
    from device_runners.runtimes import runtime_devices
    from firmware_host.dispatch import BoardUnavailable, make_dispatch, resource_of

    rows = []
    dispatch = None
    if scheduler not in (None, "", "in-process"):
        try:
            dispatch = make_dispatch(scheduler, rig_source=inventory.source, insecure=insecure, connect_timeout_s=5.0)
        except (ValueError, BoardUnavailable) as error:
            return [{"what": f"board {b.name}", "ok": False, "detail": str(error)} for b in inventory.boards]
    try:
        runtimes = runtime_devices() if dispatch is None else {}
        for board in inventory.boards:
            if dispatch is not None:
                workers = dispatch.workers_of(board.name)
                detail = f"worker {', '.join(workers)} offers {resource_of(board.name)}" if workers else f"no worker offers {resource_of(board.name)} at {scheduler}"
                rows.append({"what": f"board {board.name}", "ok": bool(workers), "detail": detail})
            elif board.host in ("virtual", "local"):
                info = runtimes[board.runtime]
                ok = info["installed"] and board.device.upper() in [d.upper() for d in info.get("devices", [])]
                detail = f"{board.runtime} {info.get('version', '')} offers {', '.join(info.get('devices', []))}" if info["installed"] else info["pip"]
                rows.append({"what": f"board {board.name}", "ok": bool(ok), "detail": detail})
            else:
                rows.append({"what": f"board {board.name}", "ok": False, "detail": f"on {board.host}: give a dask scheduler (--scheduler or [host] scheduler)"})
    finally:
        if dispatch is not None:
            dispatch.close()
    return rows


def _check_sensors(inventory) -> list[dict]:
    """One row per sensor: a fresh reading here, or its daemon answering with the sensor listed."""
    from firmware_host.board_daemon import energy_channel, open_sensor

    rows = []
    for spec in inventory.sensors:
        try:
            if spec.runs_on != "local":
                from sensors.daemon_client import DaemonClient, parse_address

                client = DaemonClient(parse_address(spec.runs_on), token=spec.daemon_token, timeout_s=5.0)
                names = [s.info.name for s in client.sensors]
                ok = spec.name in names
                rows.append({"what": f"sensor {spec.name}", "ok": ok,
                             "detail": f"daemon at {spec.runs_on} samples {', '.join(names)} at {client.rate_hz:g} Hz" if ok else f"daemon at {spec.runs_on} has no sensor {spec.name!r} (it has {', '.join(names)})"})
                continue
            sensor = open_sensor(spec, inventory.board(spec.measures))
            try:
                channel = energy_channel(spec, sensor.info)
                time.sleep(3 * sensor.info.update_interval_s)  # one conversion, so the read is fresh
                sample = sensor.read()
                rows.append({"what": f"sensor {spec.name}", "ok": True, "detail": f"{sensor.info.provenance}, {channel} = {sample.values.get(channel)}"})
            finally:
                activity = getattr(sensor, "activity", None)
                if activity is not None:
                    activity.stop()
                sensor.close()
        except Exception as error:  # noqa: BLE001 - a check reports every failure
            rows.append({"what": f"sensor {spec.name}", "ok": False, "detail": f"{type(error).__name__}: {error}"})
    return rows


def profile_command(
    file: Path = typer.Argument(..., help="A model dictionary (JSON) or an exported artifact (sidecar or model file)."),
    rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (default: the virtual rig)."),
    board: Optional[str] = typer.Option(None, "--board", help="Board name (default: the rig's first)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime, openvino or tflite (default: the board's)."),
    repeats: int = typer.Option(3, "--repeats", help="Repetitions (geometric means over them).", min=1),
    runs: int = typer.Option(20, "--runs", help="Timed runs per repetition (raised if the window is too short).", min=1),
    warmup: int = typer.Option(3, "--warmup", help="Warm-up runs.", min=0),
    idle_s: float = typer.Option(1.0, "--idle-s", help="Idle window for the baseline, seconds.", min=0.0),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size (default: the board's).", min=1),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length (default: the board's).", min=1),
    seed: int = typer.Option(0, "--seed", help="Seed of the model weights and inputs."),
    min_coverage: Optional[float] = typer.Option(None, "--min-coverage", min=0.01, max=1.0,
                                                 help="Share of each block the sensor's samples must cover; below it a repeat is measured again, then refused (default: the rig sensor's min_coverage, else 0.95)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Also save the measurement in this SQLite store (campaign 'profiles')."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler tls://HOST:PORT for remote boards (default: the rig's; 'in-process')."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a plain tcp:// scheduler on a non-loopback address (anyone reaching it runs code on the workers)."),
    as_json: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
) -> None:
    """Measure latency, energy per sequence and peak power of a model on a rig board."""
    from firmware_host.profile import FORMAT_OF_RUNTIME, ProfileOptions, run_profile

    if runtime is not None and runtime not in FORMAT_OF_RUNTIME:
        raise typer.BadParameter(f"unknown runtime {runtime!r} (known: {', '.join(FORMAT_OF_RUNTIME)})")
    if not file.exists():
        raise typer.BadParameter(f"{file}: file not found")
    if file.is_dir():
        raise typer.BadParameter(f"{file}: is a directory, expected a model dictionary (JSON) or an exported artifact")
    if store is not None:  # checked (opened, migrated, write-locked once) before anything is measured
        from firmware_host.store import check_store_writable

        if not store.parent.is_dir():
            what = "is not a directory" if store.parent.exists() else "does not exist"
            raise typer.BadParameter(f"--store {store}: {store.parent} {what}")
        with input_errors():
            check_store_writable(store)
    inventory = _rig(rig)
    options = ProfileOptions(runs=runs, warmup=warmup, idle_s=idle_s, repeats=repeats, batch=batch, seq_len=seq_len, runtime=runtime, seed=seed,
                             min_coverage=min_coverage)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=as_json, transient=True) as progress:
        task = progress.add_task("profiling", total=repeats)

        def on_phase(text: str) -> None:
            progress.update(task, description=text)

        def on_repeat(index: int, row: dict) -> None:
            progress.update(task, advance=1, description=f"repeat {index + 1}/{repeats}: {row['latency_s_per_seq'] * 1e3:.2f} ms/seq")

        from firmware_host.dispatch import make_dispatch

        with input_errors():
            dispatch = make_dispatch(scheduler if scheduler is not None else inventory.scheduler, rig_source=inventory.source, insecure=insecure)
            try:
                measurement = run_profile(file, inventory, board, options, on_repeat=on_repeat, on_phase=on_phase, dispatch=dispatch)
            finally:
                dispatch.close()
    if store is not None:
        from firmware_host.profile import store_measurement

        with input_errors():
            measurement["store"] = {"path": str(store), "repeat": store_measurement(store, measurement)}
    if as_json:
        typer.echo(json.dumps(measurement, indent=2))
        return
    emulated = " (EMULATED: virtual rig)" if measurement["emulated"] else ""
    typer.echo(
        f"{measurement['board']}{emulated}, {measurement['runtime']} on {measurement['device']}, batch {measurement['batch']} x seq {measurement['seq_len']}, "
        f"{measurement['repeats']} repeats x {measurement['runs']} runs:"
    )
    typer.echo(f"  latency     {measurement['latency_s_per_seq'] * 1e3:10.3f} ms/seq")
    typer.echo(f"  energy      {measurement['energy_j_per_seq'] * 1e3:10.3f} mJ/seq (above an idle {measurement['idle_power_w'] or 0:.3f} W; "
               f"{measurement['channel']}, {measurement['energy_method'].replace('_', ' ')})")
    typer.echo(f"  peak power  {measurement['peak_power_w']:10.3f} W")
    typer.echo(f"  clock offset {measurement['clock_offset_s'] * 1e6:.0f} +- {measurement['clock_offset_uncertainty_s'] * 1e6:.0f} us; trace {measurement['trace']}")
    for warning in measurement["warnings"]:
        typer.echo(f"  warning: {warning}")


def _register_deploy() -> None:
    """`edgetran rig deploy BOARD` lives in firmware_host.deploy (asyncssh is imported only when it runs)."""
    from firmware_host.deploy import deploy_command

    rig_app.command("deploy")(deploy_command)
    from firmware_host.deploy.scheduler import scheduler_command

    rig_app.command("scheduler")(scheduler_command)


_register_deploy()
