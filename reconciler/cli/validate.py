"""`validate`: every problem of a spec, offline and against a database."""
from __future__ import annotations

import json
import os
import sys

import click

from .fleet import READ_ONLY, fleet_options, fleet_requested, run_fleet_command
from .group import cli
from .options import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    OUTPUT,
    _connection,
    _db_options,
    _files,
    _spec_option,
    detail,
)


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@fleet_options
def validate(files, database, schema_sql, fmt, targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Check a spec: offline always; against a database with --database / $DATABASE_URL / --schema-sql (or
    every database of --targets)."""
    from ..app import validate as v
    from ..core.display import shown

    fleet = fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
        "--database": database, "--schema-sql": schema_sql})
    # like every other command, $DATABASE_URL is the database when --database is not given (libpq's
    # PG* variables alone do not make validate go online: without a database it checks offline)
    database = None if fleet else database or os.environ.get("DATABASE_URL") or None
    # every problem of every file: those that keep a file from loading, then the offline checks
    # of what loaded; the server is asked only about a spec that loaded whole
    spec, problems = v.load(_files(files))
    loaded_whole = not problems
    detail(f"spec: {len(spec.entries)} index(es) from {', '.join(spec.files)}")
    more, defs = v.offline(spec)
    problems += more
    if fleet:
        offline_errors = [p for p in problems if p.severity == "error"]
        if offline_errors:   # the spec itself is wrong: no database needs to say so
            for p in problems:
                click.echo(p.line(), err=p.severity == "error")
            sys.exit(EXIT_ERROR)

        def job(target, dsn, registry):
            return v.online_outcome(spec, defs, registry.connect(target, dsn, **READ_ONLY), problems, fmt)

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job))
    if (database or schema_sql) and loaded_whole:
        with _connection(database, schema_sql) as (conn, _):
            problems += v.online(spec, defs, conn)
    errors = [p for p in problems if p.severity == "error"]
    if fmt == "json":
        click.echo(json.dumps({"valid": not errors, "problems": [p.__dict__ for p in problems]}, indent=2))
    else:
        for p in problems:
            click.echo(shown(p.line()), err=p.severity == "error")
        if not errors and not OUTPUT.quiet:
            queries = f" and {len(spec.queries)} quer{'y' if len(spec.queries) == 1 else 'ies'}" if spec.queries else ""
            click.echo(f"{len(spec.entries)} index(es){queries} in {len(spec.files)} file(s): valid"
                       + (f" ({len(problems)} warning(s))" if problems else "") + ".")
    if errors:
        sys.exit(EXIT_ERROR)


