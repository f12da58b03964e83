"""`import`: the live indexes (or a file of CREATE INDEX statements) as a spec."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ReconcilerError

from .fleet import READ_ONLY, fleet_options, fleet_requested, run_fleet_command
from .group import cli
from .options import EXIT_CODES_HELP, _connection, _db_options, _echo_err, note


@cli.command("import", epilog=EXIT_CODES_HELP)
@_db_options
@click.option("--schema", "schemas", multiple=True, help="only this schema (repeatable)")
@click.option("--table", "tables", multiple=True, help="only tables matching this glob (repeatable)")
@click.option("--from-sql", type=click.Path(), help="read CREATE INDEX statements from a file instead (no database)")
@click.option("-o", "--output", type=click.Path(), help="write here instead of stdout (with --targets: a "
                                                          "directory, one TARGET.yaml each)")
@click.option("--force", is_flag=True, help="with -o: replace the file (with --targets: the files) if it exists")
@click.option("--collapse", "collapse_schemas", is_flag=True,
              help="schemas with the same indexes (tenant schemas) become one entry per index with a schema glob")
@fleet_options
def import_(database, schema_sql, schemas, tables, from_sql, output, force, collapse_schemas, targets_file,
            target_globs, labels, parallel, fail_fast, shard):
    """Write the live indexes (or a file of CREATE INDEX statements) as a spec."""
    from ..app.importer import (
        check_schemas,
        check_target_files,
        defs_from_sql,
        import_outcome,
        import_spec,
        live_defs,
        refuse_overwrite,
    )
    from ..spec.files import write_output

    if fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
            "--database": database, "--schema-sql": schema_sql, "--from-sql": from_sql}):
        if not output:
            raise ReconcilerError("import --targets writes one spec per target: give -o DIRECTORY")
        Path(output).mkdir(parents=True, exist_ok=True)

        def job(target, dsn, registry):
            return import_outcome(registry.connect(target, dsn, **READ_ONLY), target.name, output, schemas, tables,
                                  collapse_schemas)

        def prepare(targets):
            check_target_files(output, [t.name for t in targets], force)

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, "text", job,
                                   prepare=prepare))
    if output:
        refuse_overwrite(output, force)
    managed = None
    if from_sql:
        defs, source = defs_from_sql(from_sql, _echo_err), from_sql
        pairs = sorted({(d.schema, d.table) for d in defs})
    else:
        with _connection(database, schema_sql) as (conn, _):
            check_schemas(conn, schemas)
            defs, managed, pairs = live_defs(conn, schemas, tables, with_tables=True)
        source = "the database"
    text, kept, warnings = import_spec(defs, schemas, tables, managed, source,
                                       collapse_tables=pairs if collapse_schemas else None)
    for w in warnings:
        _echo_err(w)
    if output:
        write_output(output, text, "spec")
        note(f"Wrote {len(kept)} index(es) to {output}.")
    else:
        click.echo(text, nl=False)
