"""`plan` and `drift`: compare the spec with the live catalog (read-only)."""
from __future__ import annotations

import sys

import click

from .fleet import READ_ONLY, fleet_options, fleet_requested, run_fleet_command
from .group import cli
from .options import (
    EXIT_CHANGES,
    EXIT_CODES_HELP,
    _color,
    _connection,
    _db_options,
    _select_option,
    _spec_option,
    _timeouts,
    load_spec_files,
    note,
)


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "sql"]), default="text",
              show_default=True)
@click.option("--out", type=click.Path(), help="also save the plan to this file, for `apply --plan`")
@click.option("--detailed-exitcode", is_flag=True, help="exit 2 when there are changes, 0 when in sync")
@click.option("--lock-timeout", default="3s", show_default=True, help="per-statement lock wait (e.g. 3s, 500ms)")
@click.option("--statement-timeout", default="60s", show_default=True, help="limit for quick statements")
@click.option("--build-timeout", default="0", show_default=True, help="limit for one concurrent build (0: none)")
@_select_option
@fleet_options
def plan(files, database, schema_sql, fmt, out, detailed_exitcode, lock_timeout, statement_timeout, build_timeout,
         select, targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Show what apply would change (read-only), and what each change does to the spec's queries."""
    from ..app.engine import check_spec, make_plan
    from ..pg.connection import describe
    from ..render import render_json, render_markdown, render_sql, render_text
    from ..spec import parse_selection

    fleet = fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
        "--database": database, "--schema-sql": schema_sql, "--out": out})
    spec = load_spec_files(files)
    desired = check_spec(spec)
    if spec.queries:   # the query machinery loads only for a spec that has queries
        from ..app.verify import check_queries

        check_queries(spec)
    selection = parse_selection(select, {t for e in spec.entries for t in e.tags})
    timeouts = _timeouts(lock_timeout, statement_timeout, build_timeout)
    if fleet:
        from ..app.plan import PlanOptions, plan_database

        opts = PlanOptions(fmt, detailed_exitcode, timeouts)

        def job(target, dsn, registry):
            conn = registry.connect(target, dsn, **READ_ONLY, lock_timeout_ms=timeouts.lock_ms,
                                    statement_timeout_ms=timeouts.statement_ms)
            return plan_database(conn, spec, desired, selection, opts)[1]

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job))
    with _connection(database, schema_sql, lock_timeout_ms=timeouts.lock_ms,
                     statement_timeout_ms=timeouts.statement_ms) as (conn, dsn):
        target = f"a throwaway PostgreSQL loaded from {schema_sql}" if schema_sql else describe(dsn)
        the_plan, _cmp = make_plan(conn, spec, timeouts=timeouts, desired=desired, selection=selection)
        if spec.queries:
            from ..app.whatif import simulate

            the_plan = simulate(conn, the_plan, spec, throwaway=bool(schema_sql), lock_timeout_ms=timeouts.lock_ms)
    renderers = {"text": lambda p: render_text(p, _color(sys.stdout)), "json": render_json,
                 "markdown": render_markdown, "sql": render_sql}
    click.echo(renderers[fmt](the_plan), nl=False)
    if out:
        from datetime import datetime, timezone

        from ..reconcile.planfile import plan_to_file
        from ..spec.files import write_output

        made = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_output(out, plan_to_file(the_plan, spec.files, spec.digest, target=target, created_at=made), "plan file")
        if fmt == "text":
            same_spec = "".join(f" -f {f}" for f in files or ())
            note(f"Saved the plan to {out}; run `reconciler apply{same_spec} --plan {out}`.")
    if detailed_exitcode and not the_plan.empty:
        sys.exit(EXIT_CHANGES)


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "prometheus"]), default="text",
              show_default=True, help="prometheus: gauges for node-exporter's textfile collector")
@_select_option
@fleet_options
def drift(files, database, schema_sql, fmt, select, targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Report every difference on managed tables (for cron). Exit 2 when anything differs."""
    import time

    from ..app.engine import check_spec, make_plan
    from ..render import render_drift
    from ..render.prometheus import render_plan_prometheus
    from ..spec import parse_selection

    fleet = fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
        "--database": database, "--schema-sql": schema_sql})
    spec = load_spec_files(files)
    desired = check_spec(spec)
    selection = parse_selection(select, {t for e in spec.entries for t in e.tags})
    if fleet:
        from ..app.plan import drift_database

        def job(target, dsn, registry):
            return drift_database(registry.connect(target, dsn, **READ_ONLY), spec, desired, selection, fmt)[1]

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job))
    with _connection(database, schema_sql) as (conn, _):
        the_plan, _cmp = make_plan(conn, spec, desired=desired, selection=selection)
        dbname = conn.info.dbname
    if fmt == "prometheus":
        click.echo(render_plan_prometheus(the_plan, dbname, time.time()), nl=False)
    else:
        click.echo(render_drift(the_plan, fmt), nl=False)
    if the_plan.drifted:
        sys.exit(EXIT_CHANGES)


