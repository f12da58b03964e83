"""`import`: the live indexes (or a file of CREATE INDEX statements) as a spec."""
from __future__ import annotations

import click

from .group import cli
from .options import EXIT_CODES_HELP, _connection, _db_options, _echo_err, note


@cli.command("import", epilog=EXIT_CODES_HELP)
@_db_options
@click.option("--schema", "schemas", multiple=True, help="only this schema (repeatable)")
@click.option("--table", "tables", multiple=True, help="only tables matching this glob (repeatable)")
@click.option("--from-sql", type=click.Path(), help="read CREATE INDEX statements from a file instead (no database)")
@click.option("-o", "--output", type=click.Path(), help="write here instead of stdout")
def import_(database, schema_sql, schemas, tables, from_sql, output):
    """Write the live indexes (or a file of CREATE INDEX statements) as a spec."""
    from ..app.importer import defs_from_sql, filter_defs, live_defs
    from ..spec.dump import dump_spec
    from ..spec.files import write_output

    managed = None
    if from_sql:
        defs = defs_from_sql(from_sql, _echo_err)
    else:
        with _connection(database, schema_sql) as (conn, _):
            defs, managed = live_defs(conn, schemas, tables)
    defs = filter_defs(defs, schemas, tables)
    text = dump_spec(defs, managed=managed)
    if output:
        write_output(output, text, "spec")
        note(f"Wrote {len(defs)} index(es) to {output}.")
    else:
        click.echo(text, nl=False)
