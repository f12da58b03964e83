"""`apply`: carry out the plan with CREATE/DROP INDEX CONCURRENTLY."""
from __future__ import annotations

import sys

import click

from .group import cli
from .options import (
    CONNECTION_HELP,
    EXIT_CODES_HELP,
    EXIT_ERROR,
    OUTPUT,
    _color,
    _confirm,
    _duration_ms,
    _files,
    _select_option,
    _spec_option,
    _timeouts,
)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("planfile", required=False, type=click.Path())
@_spec_option
@click.option("-d", "--database", help=CONNECTION_HELP)
@click.option("--plan", "plan_file", type=click.Path(),
              help="run only if the plan computed now (from -f and the database) is the one saved by "
                   "`plan --out`; otherwise the plan is stale and nothing runs")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
@click.option("--dry-run", is_flag=True, help="print the statements, run nothing")
@click.option("--lock-timeout", default="3s", show_default=True, help="lock wait per statement and try")
@click.option("--statement-timeout", default="60s", show_default=True, help="limit for quick statements")
@click.option("--build-timeout", default="0", show_default=True,
              help="limit for one concurrent build, including waiting for old transactions (0: none)")
@click.option("--retries", default=5, show_default=True, help="retries of a statement after a lock timeout")
@click.option("--allow-hazard", "allowed", multiple=True, help="allow a blocking hazard code (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="event log format")
@click.option("--wait-for-lock", default="2min", show_default=True,
              help="how long to wait when another apply holds the lock, e.g. the server session of an apply "
                   "that was killed and still builds (0: exit 1 at once)")
@_select_option
def apply(planfile, files, database, plan_file, auto_approve, dry_run, lock_timeout, statement_timeout, build_timeout,
          retries, allowed, fmt, wait_for_lock, select):
    """Carry out the plan with CREATE/DROP INDEX CONCURRENTLY. Exit 0 when the database then
    matches the spec.

    With PLANFILE (a plan saved by `plan --out`, as `terraform apply plan.out`): apply exactly
    that reviewed plan, without a prompt. The plan is computed again from the spec (-f, default
    ./indexes.yaml) and the database and runs only if it is the one in the file; otherwise it is
    stale and nothing runs."""
    from ..app.apply import run_apply

    if planfile:
        if plan_file:
            raise click.UsageError("give the plan file once: PLANFILE or --plan")
        plan_file, auto_approve = planfile, True
    ok = run_apply(files=_files(files), database=database, plan_file=plan_file,
                   auto_approve=auto_approve, dry_run=dry_run,
                   timeouts=_timeouts(lock_timeout, statement_timeout, build_timeout), retries=retries,
                   allowed=set(allowed), fmt=fmt, wait_for_lock=_duration_ms(wait_for_lock, "--wait-for-lock"),
                   confirm=_confirm, echo=click.echo, color=_color(sys.stdout), select=tuple(select),
                   quiet=OUTPUT.quiet)
    if not ok:
        sys.exit(EXIT_ERROR)

