"""`schema`: the JSON Schema of indexes.yaml, for editors."""
from __future__ import annotations

import json

import click

from .group import cli
from .options import EXIT_CODES_HELP


@cli.command(epilog=EXIT_CODES_HELP)
def schema():
    """Print the JSON Schema of indexes.yaml (for editors)."""
    from ..spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))

