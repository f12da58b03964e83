"""`verify`: explain each query of the spec; exit 2 when one misses its index or budget."""
from __future__ import annotations

import sys

import click

from .fleet import READ_ONLY, fleet_options, fleet_requested, run_fleet_command
from .group import cli
from .options import (
    EXIT_CHANGES,
    EXIT_CODES_HELP,
    _connection,
    _db_options,
    _duration_ms,
    _select_option,
    load_spec_files,
)


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("-f", "--file", "files", multiple=True, type=click.Path(), default=None,
              help="spec file or directory (repeatable); default ./indexes.yaml")
@_db_options
@_select_option
@click.option("--analyze", is_flag=True, help="also run EXPLAIN (ANALYZE, BUFFERS) and check budget_ms "
                                              "(read-only transaction, rolled back)")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="with --analyze: runs per query; the median is judged")
@click.option("--allow-writes", is_flag=True, help="with --analyze: also run data-modifying queries, each run in a "
                                                   "transaction that is rolled back")
@click.option("--allow-volatile", is_flag=True, help="with --analyze: also run queries whose plan calls a VOLATILE "
                                                     "function (one that can act outside the transaction: "
                                                     "advisory locks, signalling backends, dblink); see SECURITY.md")
@click.option("--statement-timeout", default="30s", show_default=True, help="limit for one EXPLAIN")
@click.option("--lock-timeout", default="3s", show_default=True, help="lock wait for one EXPLAIN")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "prometheus"]), default="text",
              show_default=True)
@fleet_options
def verify(files, database, schema_sql, select, analyze, runs, allow_writes, allow_volatile, statement_timeout,
           lock_timeout, fmt, targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Explain every query of the spec: the access path per table, whether each `uses` index
    is in the plan, cost and rows (and with --analyze the measured time against budget_ms).
    Exit 2 when a query misses its index or its budget."""
    from ..app.verify import VerifyOptions, check_queries, run_verify, selected_queries
    from ..render.verify import RENDERERS
    from ..spec import parse_selection

    fleet = fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
        "--database": database, "--schema-sql": schema_sql})
    spec = load_spec_files(files)
    check_queries(spec)
    selection = parse_selection(select, {t for e in spec.entries for t in e.tags})
    queries = selected_queries(spec, selection)
    opts = VerifyOptions(analyze, runs, allow_writes, allow_volatile,
                         _duration_ms(statement_timeout, "--statement-timeout"), _duration_ms(lock_timeout, "--lock-timeout"))
    if fleet:
        from ..app.verify import verify_outcome

        def job(target, dsn, registry):
            conn = registry.connect(target, dsn, **READ_ONLY)
            return verify_outcome(conn, queries, opts, selection.describe(), fmt)

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job))
    verdicts = []
    if queries:
        with _connection(database, schema_sql, autocommit=True) as (conn, _):
            verdicts = run_verify(conn, queries, opts)
    if not spec.queries:
        click.echo("The spec has no queries: nothing to verify (add `queries:` or `queries_file:`).", err=True)
    click.echo(RENDERERS[fmt](verdicts, selection.describe()), nl=False)
    if any(not v.ok for v in verdicts):
        sys.exit(EXIT_CHANGES)
