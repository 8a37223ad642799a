"""The `edgetran` command: one typer app with a sub-app per room.

Rooms contribute their sub-apps; this module only assembles them and owns the
process boundary: every usage or input error is printed as one line on standard
error with exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Sequence

import click
import typer

from codesign.cli import published_app, space_app

app = typer.Typer(
    name="edgetran",
    help="EdgeTran bench toolkit: profile, search and co-design transformers with the boards they run on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(space_app, name="space")
app.add_typer(published_app, name="published")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code (2 for bad input)."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args=args, prog_name="edgetran", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        return 0
    except click.ClickException as error:
        context = getattr(error, "ctx", None)
        where = f"{context.command_path}: " if context is not None else "edgetran: "
        click.echo(f"{where}error: {error.format_message()}", err=True)
        return 2
    except click.Abort:
        click.echo("edgetran: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
