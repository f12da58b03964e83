"""The `reconciler` command group; each command module adds itself to it."""
from __future__ import annotations

import click

from .options import EXIT_CODES_HELP


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Declarative index-as-code for PostgreSQL.

    Write every index you want in indexes.yaml; `plan` compares it with the live catalog and
    `apply` carries it out with CREATE/DROP INDEX CONCURRENTLY.
    """

