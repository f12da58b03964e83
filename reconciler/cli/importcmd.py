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
@click.option("--force", is_flag=True, help="with -o: replace the file if it exists")
def import_(database, schema_sql, schemas, tables, from_sql, output, force):
    """Write the live indexes (or a file of CREATE INDEX statements) as a spec."""
    from ..app.importer import check_schemas, defs_from_sql, import_spec, live_defs, refuse_overwrite
    from ..spec.files import write_output

    if output:
        refuse_overwrite(output, force)
    managed = None
    if from_sql:
        defs, source = defs_from_sql(from_sql, _echo_err), from_sql
    else:
        with _connection(database, schema_sql) as (conn, _):
            check_schemas(conn, schemas)
            defs, managed = live_defs(conn, schemas, tables)
        source = "the database"
    text, kept, warnings = import_spec(defs, schemas, tables, managed, source)
    for w in warnings:
        _echo_err(w)
    if output:
        write_output(output, text, "spec")
        note(f"Wrote {len(kept)} index(es) to {output}.")
    else:
        click.echo(text, nl=False)
