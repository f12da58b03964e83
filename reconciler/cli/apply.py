"""`apply`: carry out the plan with CREATE/DROP INDEX CONCURRENTLY."""
from __future__ import annotations

import sys

import click

from .fleet import event_echo, fleet_options, fleet_requested, run_fleet_command
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
    _write_options,
)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("planfile", required=False, type=click.Path())
@_spec_option
@click.option("-d", "--database", help=CONNECTION_HELP)
@click.option("--plan", "plan_file", type=click.Path(),
              help="run only if the plan computed now (from -f and the database) is the one saved by "
                   "`plan --out`; otherwise the plan is stale and nothing runs")
@_write_options(dry_run_help="print the statements, run nothing",
                build_help="limit for one concurrent build, including waiting for old transactions (0: none)",
                wait_default="2min",
                wait_help="how long to wait when another apply holds the lock, e.g. the server session of an apply "
                          "that was killed and still builds (0: exit 1 at once)")
@click.option("--allow-hazard", "allowed", multiple=True, help="allow a blocking hazard code (repeatable)")
@_select_option
@fleet_options
def apply(planfile, files, database, plan_file, auto_approve, dry_run, lock_timeout, statement_timeout, build_timeout,
          retries, allowed, fmt, wait_for_lock, select, targets_file, target_globs, labels, parallel, fail_fast, shard):
    """Carry out the plan with CREATE/DROP INDEX CONCURRENTLY. Exit 0 when the database then
    matches the spec.

    With PLANFILE (a plan saved by `plan --out`, as `terraform apply plan.out`): apply exactly
    that reviewed plan, without a prompt. The plan is computed again from the spec (-f, default
    ./indexes.yaml) and the database and runs only if it is the one in the file; otherwise it is
    stale and nothing runs."""
    from ..app.apply import run_apply

    if fleet_requested(targets_file, target_globs, labels, shard, fail_fast, **{
            "--database": database, "--plan": plan_file or planfile}):
        sys.exit(_apply_fleet(files, auto_approve, dry_run, lock_timeout, statement_timeout, build_timeout, retries,
                              allowed, fmt, wait_for_lock, select, targets_file, target_globs, labels, parallel,
                              fail_fast, shard))
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



def _apply_fleet(files, auto_approve, dry_run, lock_timeout, statement_timeout, build_timeout, retries, allowed, fmt,
                 wait_for_lock, select, targets_file, target_globs, labels, parallel, fail_fast, shard) -> int:
    """apply on every target: no prompt (--auto-approve or --dry-run), each target's events
    printed as they happen with its name (text: `[name] ...`; json: a "target" key)."""
    from ..app.apply import apply_outcome
    from ..app.engine import check_spec
    from ..app.verify import check_queries
    from ..errors import ReconcilerError
    from ..spec import load_spec, parse_selection

    if not auto_approve and not dry_run:
        raise ReconcilerError("apply --targets does not prompt for each database",
                              "review with `plan --targets ...`, then pass --auto-approve (or --dry-run)")
    spec = load_spec(_files(files))
    desired = check_spec(spec)   # a bad spec is reported before any connection
    check_queries(spec)
    parse_selection(select, {t for e in spec.entries for t in e.tags})
    options = dict(auto_approve=True, dry_run=dry_run, timeouts=_timeouts(lock_timeout, statement_timeout,
                                                                          build_timeout),
                   retries=retries, allowed=set(allowed), wait_for_lock=_duration_ms(wait_for_lock, "--wait-for-lock"),
                   select=tuple(select))

    def job(target, dsn, registry):
        echo = event_echo(target, fmt, registry)
        return apply_outcome(target.name, dsn, spec=spec, desired=desired, fmt=fmt, echo=echo,
                             connector=lambda d, **kw: registry.connect(target, d, **kw), **options)

    return run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt, job)
