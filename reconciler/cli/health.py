"""`health` and `maintain`: index health from the statistics, and the upkeep it calls for."""
from __future__ import annotations

import sys

import click

from .fleet import event_echo, fleet_options, fleet_requested, run_fleet_command
from .group import cli
from .options import (
    CONNECTION_HELP,
    OUTPUT,
    EXIT_CHANGES,
    EXIT_CODES_HELP,
    EXIT_ERROR,
    _color,
    _confirm,
    _duration_ms,
    _echo_err,
    _spec_option,
    _timeouts,
    _write_options,
)

HEALTH_EXIT_HELP = """
\b
Exit codes: 0 success / in sync, 1 any error, 2 changes present
(health: 0 healthy, 2 a threshold is crossed, for cron).
"""


@cli.command(epilog=HEALTH_EXIT_HELP)
@_spec_option
@click.option("-d", "--database", help=CONNECTION_HELP)
@click.option("--all", "all_tables", is_flag=True, help="every user table, not only the managed ones")
@click.option("--replica", "replicas", multiple=True, metavar="DSN",
              help="a replica whose index scans count too (repeatable)")
@click.option("--exact", is_flag=True, help="measure the bloat of flagged btree indexes with pgstattuple's "
                                           "pgstatindex (reads every page of those indexes)")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "prometheus", "html"]),
              default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the report here (atomically) "
                                                                      "instead of stdout")
@click.option("--lock-timeout", default="2s", show_default=True, help="never wait longer for a lock")
@click.option("--statement-timeout", default="60s", show_default=True, help="limit for each statistics query")
@fleet_options
def health(files, database, all_tables, replicas, exact, fmt, output, lock_timeout, statement_timeout,
           targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Index health from the statistics: unused, duplicate, redundant, invalid and bloated
    indexes, foreign keys without an index, hit ratio, sequential scans and stale statistics,
    each with the spec edit that fixes it. Read-only."""
    from ..app.health import HealthOptions, render_report, run_health, write_atomically

    if fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
            "--database": database, "--replica": replicas, "--output": output}):
        from dataclasses import replace

        from ..app.health import health_outcome, spec_for

        spec = spec_for(tuple(files or ()), all_tables)
        base = HealthOptions(tuple(files or ()), None, all_tables, (), exact,
                             _duration_ms(lock_timeout, "--lock-timeout"),
                             _duration_ms(statement_timeout, "--statement-timeout"))

        def job(target, dsn, registry):
            return health_outcome(replace(base, database=dsn), spec, fmt)

        sys.exit(run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job))
    report = run_health(HealthOptions(tuple(files or ()), database, all_tables, tuple(replicas), exact,
                                      _duration_ms(lock_timeout, "--lock-timeout"),
                                      _duration_ms(statement_timeout, "--statement-timeout")))
    text = render_report(report, fmt)
    if output:
        write_atomically(output, text)
        _echo_err(f"Wrote the {fmt} report to {output}.")
    else:
        click.echo(text, nl=False)
    if report.crossed:
        sys.exit(EXIT_CHANGES)




@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@click.option("-d", "--database", help=CONNECTION_HELP)
@click.option("--index", "indexes", multiple=True, metavar="NAME",
              help="rebuild this index (NAME or SCHEMA.NAME) whatever its bloat (repeatable)")
@click.option("--vacuum", is_flag=True, help="VACUUM (ANALYZE) every managed table (the weekly job)")
@click.option("--exact", is_flag=True, help="confirm bloat with pgstattuple's pgstatindex before rebuilding")
@_write_options(dry_run_help="show the plan, run nothing",
                build_help="limit for one REINDEX, VACUUM or ANALYZE, waits included (0: none)",
                wait_default="0", wait_help="how long to wait when an apply or maintain runs (0: exit 1 at once)")
@fleet_options
def maintain(files, database, indexes, vacuum, exact, dry_run, auto_approve, lock_timeout, statement_timeout,
             build_timeout, retries, fmt, wait_for_lock, targets_file, target_globs, labels, parallel, fail_fast,
             shard):
    """Upkeep with apply's safety: REINDEX INDEX CONCURRENTLY of bloated indexes, ANALYZE of stale
    statistics (VACUUM (ANALYZE) with --vacuum), DROP of abandoned INVALID leftovers. Shows the
    plan first. Exit 0 when every step succeeded."""
    from ..app.maintain import MaintainOptions, run_maintain

    opts = MaintainOptions(tuple(files or ()), database, tuple(indexes), vacuum, exact, dry_run, auto_approve,
                           _timeouts(lock_timeout, statement_timeout, build_timeout), retries, fmt,
                           _duration_ms(wait_for_lock, "--wait-for-lock"))
    if fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{"--database": database}):
        sys.exit(_maintain_fleet(opts, targets_file, target_globs, labels, shard, parallel, fail_fast))
    ok = run_maintain(opts, confirm=_confirm, echo=click.echo, color=_color(sys.stdout), quiet=OUTPUT.quiet)
    if not ok:
        sys.exit(EXIT_ERROR)


def _maintain_fleet(opts, targets_file, target_globs, labels, shard, parallel, fail_fast) -> int:
    """maintain on every target: no prompt (--auto-approve or --dry-run), each target's events
    printed as they happen with its name (text: `[name] ...`; json: a "target" key)."""
    from dataclasses import replace

    from ..app.maintain import _spec, maintain_outcome, parse_index_name
    from ..errors import ReconcilerError

    if not opts.auto_approve and not opts.dry_run:
        raise ReconcilerError("maintain --targets does not prompt for each database",
                              "review with `maintain --targets ... --dry-run`, then pass --auto-approve")
    for n in opts.indexes:
        parse_index_name(n)   # a bad name or spec is reported before any connection
    spec = _spec(opts)

    def job(target, dsn, registry):
        echo = event_echo(target, opts.fmt, registry)
        return maintain_outcome(replace(opts, database=dsn), spec, echo=echo,
                                connector=lambda d, **kw: registry.connect(target, d, **kw))

    return run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, opts.fmt, job)
