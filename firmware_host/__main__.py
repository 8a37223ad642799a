"""`python -m firmware_host` runs the `edgetran` command."""

from firmware_host.cli import run

run()
