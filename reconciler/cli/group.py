"""The `reconciler` command group; each command module adds itself to it.

Every command, including the ones added later, gets `-q/--quiet`, `-v/--verbose` and
`--no-color` here, in one place (`Group.add_command`): they are accepted before the command
name (`reconciler -q plan`) and after it (`reconciler plan -q`).
"""
from __future__ import annotations

import click

from .options import EXIT_CODES_HELP, output_options


class Group(click.Group):
    """A click group that gives every command it holds the shared output options."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        output_options(cmd)
        super().add_command(cmd, name)


@click.group(cls=Group, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Declarative index-as-code for PostgreSQL.

    Write every index you want in indexes.yaml; `plan` compares it with the live catalog and
    `apply` carries it out with CREATE/DROP INDEX CONCURRENTLY.
    """


output_options(cli)
