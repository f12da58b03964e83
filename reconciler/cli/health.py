"""`health` and `maintain`: index health from the statistics, and the upkeep it calls for."""
from __future__ import annotations

import sys

import click

from .group import cli
from .options import CONNECTION_HELP, EXIT_CHANGES, EXIT_CODES_HELP, _duration_ms, _echo_err, _spec_option

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
def health(files, database, all_tables, replicas, exact, fmt, output, lock_timeout, statement_timeout):
    """Index health from the statistics: unused, duplicate, redundant, invalid and bloated
    indexes, foreign keys without an index, hit ratio, sequential scans and stale statistics,
    each with the spec edit that fixes it. Read-only."""
    from ..app.health import HealthOptions, render_report, run_health, write_atomically

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


__all__ = ["health", "EXIT_CODES_HELP"]
