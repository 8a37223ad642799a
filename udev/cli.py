"""`edgetran udev install|show`: install the project's udev rules, or print them.

Bad input and a non-root install are raised as ``typer.BadParameter`` (one line, exit 2
at the entry point); a failing system command is one line on standard error, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from udev import install as installer

udev_app = typer.Typer(help="udev rules for I2C buses, NPU sticks and cpufreq/hwmon/RAPL access.", no_args_is_help=True)


def host() -> installer.Host:
    """The machine the commands act on (tests replace this function)."""
    return installer.Host()


@udev_app.command("install")
def install_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the actions and change nothing."),
    rules_dir: Path = typer.Option(installer.DEFAULT_RULES_DIR, "--rules-dir", help="Where udev reads local rules."),
    group: str = typer.Option(installer.DEFAULT_GROUP, "--group", help="The group given access (created when missing)."),
) -> None:
    """Copy the rules (atomically), create the group, reload udev and re-trigger the devices."""
    try:
        installer.install(rules_dir, group, dry_run=dry_run, host=host(), echo=typer.echo)
    except (installer.NotRootError, ValueError) as error:
        raise typer.BadParameter(str(error)) from None
    except installer.InstallError as error:
        typer.echo(f"edgetran udev install: error: {error}", err=True)
        raise typer.Exit(1) from None


@udev_app.command("show")
def show_command(
    name: Optional[str] = typer.Argument(None, help="One file, e.g. 60-edgetran-i2c.rules (default: all)."),
    group: str = typer.Option(installer.DEFAULT_GROUP, "--group", help="Show them as installed for this group."),
) -> None:
    """Print the shipped rules files."""
    files = installer.shipped_rules()
    if name is not None:
        if name not in files:
            raise typer.BadParameter(f"no rules file {name!r}; shipped: {', '.join(files)}")
        files = {name: files[name]}
    try:
        for index, (file_name, text) in enumerate(files.items()):
            if len(files) > 1:
                typer.echo(("\n" if index else "") + f"# ==> {file_name} <==")
            typer.echo(installer.render(text, group), nl=False)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
