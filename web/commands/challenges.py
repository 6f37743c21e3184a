"""`questline` CLI commands of the `challenges` package (filled in by its issue)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this package's commands to the `questline` command group."""
