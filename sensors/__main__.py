"""``python -m sensors``: the sensors room's commands without the rest of the project.

``python -m sensors sensor daemon --config FILE`` is ``edgetran sensor daemon --config
FILE`` (the same typer commands, the same exit codes: 2 and one line for bad input, 1
when the sampling thread dies) but imports only ``sensors`` and the CLI libraries. The
sensor host's systemd unit starts the daemon this way: the daemon runs beside the board
on a Pi, and the full ``edgetran`` command imports the host's modules too (about 20 MB
more resident memory for nothing the daemon uses).
"""

from __future__ import annotations

import sys
from typing import Sequence

import typer

from sensors.cli import sensor_app, trace_app

CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(name="edgetran", help="EdgeTran sensors: power sources, the sampling daemon, traces.", no_args_is_help=True)
app.add_typer(sensor_app, name="sensor")
app.add_typer(trace_app, name="trace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sensors CLI on ``argv`` and return the exit code (2 for bad input)."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args=args, prog_name="edgetran", standalone_mode=False)
    except CLICK_EXCEPTION as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            text = error.format_message()
            if text.strip():
                typer.echo(text)
            return 0
        context = getattr(error, "ctx", None)
        where = context.command_path if context is not None else "edgetran"
        typer.echo(f"{where}: error: {' '.join(str(error.format_message()).split())}", err=True)
        return 2
    except typer.Abort:
        typer.echo("edgetran: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
