"""The `edgetran` command: one typer app with a sub-app per room.

Rooms contribute their sub-apps; this module only assembles them and owns the
process boundary: every usage or input error is printed as one line on standard
error with exit code 2, never a traceback. Rooms report bad input by raising
``typer.BadParameter(message)``.
"""

from __future__ import annotations

import sys
from typing import Sequence

import typer

from codesign.cli import published_app, space_app
from codesign.model_cli import model_app
from codesign.protran.cli import protran_app
from device_runners.cli import cpufreq_app, run_command
from firmware_host.campaign_cli import campaign_app, store_app
from firmware_host.host_cli import profile_command, rig_app
from firmware_host.rig_evaluator import rig_device_kind
from firmware_host import store as _store  # noqa: F401 - registers the one store, where ProTran keeps its campaigns
from sensors.cli import sensor_app, trace_app
from udev.cli import udev_app

# typer >= 0.22 ships its own copy of click; find the exception bases through typer's
# public classes so this works with either.
CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    name="edgetran",
    help="EdgeTran bench toolkit: profile, search and co-design transformers with the boards they run on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(space_app, name="space")
app.add_typer(published_app, name="published")
app.add_typer(model_app, name="model")
app.add_typer(protran_app, name="protran")
app.add_typer(sensor_app, name="sensor")
app.add_typer(trace_app, name="trace")
app.add_typer(cpufreq_app, name="cpufreq")
app.add_typer(udev_app, name="udev")
app.command("run")(run_command)
app.command("profile")(profile_command)
app.add_typer(rig_app, name="rig")
app.add_typer(campaign_app, name="campaign")
app.add_typer(store_app, name="store")


def error_line(error: Exception) -> str:
    """One line for a usage or input error, prefixed with the command that raised it."""
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else "edgetran"
    bare = isinstance(error, typer.BadParameter) and error.param is None and error.param_hint is None
    message = error.message if bare else error.format_message()
    return f"{where}: error: {' '.join(str(message).split())}"


def show_flags_as_flags(command) -> None:
    """Give every flag (``--json``, ``--help``) an empty metavar so help does not show it as taking a ``<bool>`` value."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    build_help = getattr(command, "get_help_option", None)
    if build_help is not None:  # click builds --help apart from the params, when help is asked for

        def help_option(ctx, build=build_help):
            option = build(ctx)
            if option is not None and option.metavar is None:
                option.metavar = ""
            return option

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        show_flags_as_flags(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (2 for bad input)."""
    command = typer.main.get_command(app)
    show_flags_as_flags(command)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with rig_device_kind():  # `--device rig:<board>` (ProTran) measures on the rig while the command runs
            result = command.main(args=args, prog_name="edgetran", standalone_mode=False)
    except CLICK_EXCEPTION as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            # typer's rich help prints itself while the error is built; plain click's does not.
            text = error.format_message()
            if text.strip():
                typer.echo(text)
            return 0
        typer.echo(error_line(error), err=True)
        return 2
    except typer.Abort:
        typer.echo("edgetran: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
