"""`reconciler apply`: plan (or load a saved plan), approve, lock, execute, verify convergence.

One job: the safe order of the apply workflow. Everything is checked before the first
statement: the spec, every definition (by the server, on a rolled-back temp table), blocking
hazards, a stale saved plan, a transaction-pooling proxy, another apply running. A saved plan
never decides what runs: the plan is computed from the spec (-f) and the database, and the file
only has to describe that same plan (`reconcile.planfile.stale_reason`).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import psycopg

from ..core.display import shown, shown_lines
from ..core.hazards import parse_allowed
from ..core.index import IndexDef
from ..core.kinds import Action, DriftKind
from ..core.plan import Plan, PlannedChange
from ..errors import ApplyError, ReconcilerError, StalePlanError
from ..pg import catalog
from ..pg.connection import connect, resolve_dsn
from ..reconcile.naming import is_leftover, leftover_of
from ..reconcile.planfile import SavedPlan, applied_already, read_plan_file, stale_reason
from ..reconcile.planner import Timeouts
from ..render import render_text, summary_line
from ..run import events as ev
from ..run.executor import Executor
from ..run.wait import POLL_EVERY_SECOND, Backoff, GaveUp, NotYet, wait_until
from ..spec import Selection, load_spec, parse_selection
from ..spec.files import read_input
from .engine import check_spec, make_plan
from .equivalence import Equivalence
from .verify import check_queries
from .whatif import simulate


def find_on_partition(conn: psycopg.Connection, eq: Equivalence | None = None) -> Callable:
    """For the executor: the indexes on one partition equivalent to the desired parent index,
    as (name, valid, (schema, name) of the index it is attached to, oid)."""
    eq = eq or Equivalence(conn)

    def find(schema: str, table: str, desired: IndexDef) -> list[tuple[str, bool, tuple[str, str] | None, int]]:
        snap = catalog.introspect(conn, [(schema, table)])
        here = replace(desired, schema=schema, table=table, name="")
        return [(x.name, x.valid, x.parent_key, x.oid) for x in snap.indexes
                if x.schema == schema and x.table == table and not x.constraint and eq.same(here, x.definition)]

    return find


def verifier(conn: psycopg.Connection, eq: Equivalence | None = None) -> Callable[[PlannedChange], str | None]:
    """For the executor: the post-condition of a change that was carried out, or None."""
    eq = eq or Equivalence(conn)

    def verify(pc: PlannedChange) -> str | None:
        c = pc.change
        snap = catalog.introspect(conn, [(c.schema, c.table)])
        by_name = {(x.schema, x.name): x for x in snap.indexes}
        if c.action is Action.DROP:
            return "index still exists" if (c.schema, c.index) in by_name else None
        x = by_name.get((c.schema, c.index))
        if x is None:
            return "index does not exist"
        if not x.valid:
            return "index is not VALID"
        if not eq.same(c.desired, x.definition):
            return f"definition differs from the spec: {x.indexdef}"
        return None

    return verify


class _Printer:
    """An `Emit` that prints events: one JSON object per line, or lines for a person (a
    progress bar redrawn in place on a terminal, every 10 s otherwise). With -q only what a
    person must see: failures and the info lines (summary, waits, dry run).

    Names, statements and server messages are printed through `shown`: one visible line each,
    a newline or an escape code in a name written as an escape. Only `Info` holds several lines,
    whose names were made printable where they were put in (`_summary`). JSON is ASCII-only."""

    QUIET_KEEPS = (ev.ChangeFailed, ev.Info)

    def __init__(self, fmt: str, echo: Callable, tty: bool, quiet: bool = False):
        self.fmt, self.echo, self.tty, self.quiet = fmt, echo, tty, quiet
        self.last_progress = 0.0

    def __call__(self, e: ev.Event) -> None:
        if self.fmt == "json":
            self.echo(json.dumps(e.to_dict(), default=str))
            return
        if self.quiet and not isinstance(e, self.QUIET_KEEPS):
            return
        if isinstance(e, ev.Progress):
            self._progress(e)
            return
        if self.tty and not isinstance(e, ev.Statement):
            sys.stdout.write("\r" + " " * 150 + "\r")
        for line in _lines(e):
            self.echo(shown_lines(line) if isinstance(e, ev.Info) else shown(line))

    def _progress(self, e: ev.Progress) -> None:
        now = time.monotonic()
        bar = ""
        if e.fraction is not None:
            filled = int(e.fraction * 30)
            bar = "[" + "#" * filled + "." * (30 - filled) + f"] {e.fraction * 100:5.1f}%"
        eta = f" ETA {e.eta_s:.0f}s" if e.eta_s is not None else ""
        wait = f" waiting for pid {e.waiting_for_pid}" if e.waiting_for_pid else ""
        line = f"  {e.index}: {e.phase} {bar}{eta}{wait}"
        if self.tty:
            sys.stdout.write("\r" + shown(line)[:150].ljust(150))
            sys.stdout.flush()
        elif now - self.last_progress >= 10:
            self.last_progress = now
            self.echo(shown(line))


def _lines(e: ev.Event) -> list[str]:
    """An event as lines of text for a person."""
    if isinstance(e, ev.ChangeStart):
        return [f"{e.action} {e.schema}.{e.index} on {e.table}"]
    if isinstance(e, ev.Statement):
        return [f"  sql: {e.sql};" + (f"  (try {e.attempt})" if e.attempt > 1 else "")]
    if isinstance(e, ev.Retry):
        return [f"  retry in {e.sleep_s}s: {e.error}"]
    if isinstance(e, ev.Waiting):
        return [f"  waiting: {e.detail}"] + [f"    pid {s.pid} ({s.state}, {s.age_s}s): {s.query}"
                                             for s in e.sessions or ()]
    if isinstance(e, ev.Cleanup):
        return [f"  cleanup: {e.detail} ({e.index})"]
    if isinstance(e, ev.Skip):
        return [f"  skip: {e.detail}"]
    if isinstance(e, ev.ChangeDone):
        return [f"  done in {e.seconds:.2f}s" + (f", {e.size_bytes:,} bytes" if e.size_bytes else "")]
    if isinstance(e, ev.ChangeFailed):
        return [f"  FAILED: {e.error}"]
    if isinstance(e, ev.Info):
        return [e.detail]
    return []


def _read_saved_plan(plan_path: str) -> SavedPlan:
    if not Path(plan_path).exists():
        raise StalePlanError(f"{plan_path}: no such plan file", "make one with `reconciler plan --out FILE`")
    return read_plan_file(read_input(plan_path, "plan file", error=StalePlanError), plan_path)


def _check_saved(saved: SavedPlan, fresh: Plan, spec, plan_path: str) -> None:
    """The saved plan is only a statement of what was reviewed: the plan that runs is `fresh`
    (computed now from the spec and the live database), and only if it is that one."""
    done = applied_already(saved, fresh, spec.digest)
    if done:
        # Terraform refuses a saved plan once applied ("Saved plan is stale"): an error, nothing run
        raise StalePlanError(f"{done}; nothing was run",
                             f"run `reconciler plan --out {plan_path}` again and review it" if fresh.changes else
                             "nothing is left to do: `reconciler plan` shows no changes")
    why = stale_reason(saved, fresh, spec.digest)
    if why:
        raise StalePlanError(f"the plan is stale: {why}; nothing was run",
                             f"run `reconciler plan --out {plan_path}` again and review it")


def run_apply(*, files: list[str], database: str | None, plan_file: str | None, auto_approve: bool, dry_run: bool,
              timeouts: Timeouts, retries: int, allowed: set[str], fmt: str, wait_for_lock: int,
              confirm: Callable[[str], bool], echo: Callable, color: bool, select: tuple[str, ...] = (),
              quiet: bool = False, loaded: tuple | None = None, connector: Callable = connect) -> bool:
    """`loaded`: (spec, desired) already read and checked (a fleet run does it once);
    `connector(dsn, autocommit=True)` opens the connection (a fleet run's can be cancelled)."""
    allowed = parse_allowed(allowed)   # a typo is an error before anything else happens
    dsn = resolve_dsn(database)
    if loaded is not None:
        spec, desired = loaded
    else:
        spec = load_spec(files)
        desired = check_spec(spec)  # a bad spec is reported before connecting
    check_queries(spec)
    saved = _read_saved_plan(plan_file) if plan_file else None
    if saved is not None:
        # a saved plan is applied with the selection it was made with (it can only narrow the
        # spec's changes, and the plan computed with it must be the one the file describes)
        if select:
            raise ApplyError("--select cannot change a saved plan; it applies the selection it was made with",
                             "run `reconciler plan --select ... --out PLANFILE` instead")
        select = saved.selection
    try:
        selection = parse_selection(select, {t for e in spec.entries for t in e.tags})
    except ReconcilerError as e:
        if saved is None:
            raise
        raise StalePlanError(f"the plan is stale: its selection does not fit the spec ({e.message}); "
                             "nothing was run") from None
    printer = _Printer(fmt, echo, color and fmt == "text", quiet)
    # a dry run promises not to change anything: its session is read-only like plan's
    conn = connector(dsn, autocommit=True, read_only=dry_run, lock_timeout_ms=timeouts.lock_ms,
                     statement_timeout_ms=timeouts.statement_ms)
    eq = Equivalence(conn)   # the server's words of each desired index, asked once for the whole run
    ex = Executor(conn, emit=printer, retries=retries, monitor_dsn=dsn, verify=verifier(conn, eq),
                  find_on_partition=find_on_partition(conn, eq))
    locked = False
    try:
        ex.check_session()
        if not dry_run:
            ex.acquire_lock(wait_for_lock)
            locked = True
        plan = _plan_waiting_for_builds(conn, spec, timeouts, printer, retries, desired, selection)
        if saved is not None:
            _check_saved(saved, plan, spec, plan_file)
        # what the changes do to the spec's queries: QUERY_REGRESSION blocks below unless allowed
        plan = simulate(conn, plan, spec, lock_timeout_ms=timeouts.lock_ms)
        blocking = sorted({h.code for pc in plan.changes for h in pc.hazards if h.blocking} - allowed)
        if fmt == "text" and not (quiet and auto_approve and not dry_run):  # a prompt needs the plan above it
            echo(render_text(plan, color).rstrip())
        if plan.empty:
            return True
        if blocking:
            raise ApplyError(f"the plan has blocking hazards: {', '.join(blocking)}",
                             " ".join(f"--allow-hazard {b}" for b in blocking) + " to go ahead")
        if dry_run:
            printer(ev.Info("dry run: nothing executed"))
            return True
        if not auto_approve and not confirm("Apply these changes?"):
            raise ApplyError("not approved; nothing changed")
        try:
            ex.execute(plan)
        except KeyboardInterrupt:
            _summary(ex, plan, printer, interrupted=True, left=_left_behind(conn, plan, ex))
            return False
        except ApplyError as e:
            _summary(ex, plan, printer, left=_left_behind(conn, plan, ex))
            raise e
        _summary(ex, plan, printer)
        # Convergence: a second plan must be empty.
        again, _ = make_plan(conn, spec, timeouts=timeouts, desired=desired, selection=selection)
        if not again.empty:
            printer(ev.Info("after apply the database still differs: " + summary_line(again)))
            return False
        return True
    finally:
        if locked:
            ex.release_lock()
        conn.close()


def fleet_recorder(command: str, echo: Callable) -> tuple[list[str], Callable, Callable]:
    """For one database of a fleet run: an `echo` that also keeps every line said (the outcome's
    summary is picked from them), and a `confirm` that refuses to prompt (the caller asked for
    --auto-approve or --dry-run)."""
    said: list[str] = []

    def record(text: str = "") -> None:
        said.extend(str(text).splitlines())
        echo(text)

    def no_prompt(question: str) -> bool:
        raise ApplyError(f"a fleet {command} does not prompt", "pass --auto-approve (or --dry-run)")

    return said, record, no_prompt


def apply_outcome(target: str, dsn: str, *, spec, desired, fmt: str, echo: Callable, connector: Callable,
                  **options):
    """`apply` on one database of a fleet (no prompt: the caller asked for --auto-approve or
    --dry-run). The event log goes to `echo` as it happens; the outcome's summary is the run's
    last summary line."""
    from ..fleet import Outcome, Status

    said, record, no_prompt = fleet_recorder("apply", echo)
    ok = run_apply(files=list(spec.files), database=dsn, plan_file=None, confirm=no_prompt, echo=record, color=False,
                   fmt=fmt, loaded=(spec, desired), connector=connector, **options)
    lines = [ln.strip() for ln in said if not ln.startswith("{")]
    summary = next((ln for ln in reversed(lines) if ln.startswith(("Summary:", "Interrupted.", "after apply"))),
                   next((ln for ln in reversed(lines) if ln.startswith(("No changes", "Plan:", "dry run"))),
                        "No changes."))
    if fmt == "json":
        events = [json.loads(ln) for ln in said if ln.startswith("{")]
        summary = next((e["detail"].splitlines()[0] for e in reversed(events) if e.get("event") == "info"
                        and str(e.get("detail", "")).startswith(("Summary:", "Interrupted.", "dry run"))),
                       "No changes.")
    return Outcome(Status.OK if ok else Status.FAILED, 0 if ok else 1, summary)


def _bounded(conn, timeouts: Timeouts, retries: int, printer, fn: Callable):
    """Run a catalog read (planning) under the lock timeout, retried like a statement.

    Planning takes ACCESS SHARE on the managed tables (table sizes, the probe temp table); with
    no lock_timeout a session holding ACCESS EXCLUSIVE (a migration, a VACUUM FULL) would make
    apply hang for as long as it holds it."""
    conn.execute(f"SET lock_timeout = '{timeouts.lock_ms or 0}ms'")

    def attempt(n: int):
        try:
            return fn()
        except psycopg.errors.LockNotAvailable as e:
            return NotYet((e.diag.message_primary or str(e)).strip())

    def report(w) -> None:
        printer(ev.Retry("(planning)", w.tries + 1, w.state, round(w.delay_s, 2)))

    try:
        return wait_until(attempt, backoff=Backoff(), tries=retries + 1, on_wait=report)
    except GaveUp as g:
        raise ApplyError(f"cannot read the catalog of the managed tables: {g.state} (SQLSTATE 55P03); another "
                         "session holds a conflicting lock on one of them; nothing changed",
                         "retry later, or raise --retries/--lock-timeout") from None


def _plan_waiting_for_builds(conn, spec, timeouts: Timeouts, printer, retries: int = 0,
                             desired: list[IndexDef] | None = None, selection: Selection = Selection()) -> Plan:
    """Plan; while another backend is still building one of our indexes (say, the build of an
    apply that was killed), wait for it instead of touching it, then plan again."""

    def plan_when_idle(n: int):
        plan, _ = _bounded(conn, timeouts, retries, printer,
                           lambda: make_plan(conn, spec, timeouts=timeouts, desired=desired, selection=selection))
        busy = [shown(d.index) for d in plan.drift if d.kind is DriftKind.BEING_BUILT]
        return NotYet(busy) if busy else plan

    def report(w) -> None:
        if w.first:
            printer(ev.Info("waiting for builds another session is running: " + ", ".join(w.state)))

    try:
        return wait_until(plan_when_idle, backoff=POLL_EVERY_SECOND, on_wait=report,
                          timeout_s=timeouts.build_ms / 1000 if timeouts.build_ms else 3600)
    except GaveUp as g:
        raise ApplyError("another session is still building " + ", ".join(g.state) + "; nothing changed",
                         "wait for it to finish (or raise --build-timeout) and apply again") from None


def _left_behind(conn, plan: Plan, ex: Executor) -> list[str]:
    """What a change that did not finish left in the database (read after the fact, so it holds
    whatever happened): the old index of a replace renamed aside, an INVALID index."""
    finished = {id(o.change) for o in ex.outcomes if o.ok}
    tables = sorted({(pc.change.schema, pc.change.table) for pc in plan.changes if id(pc) not in finished})
    try:
        if conn.info.transaction_status != 0:
            conn.rollback()
        snap = catalog.introspect(conn, tables, stats=False)
    except (psycopg.Error, KeyboardInterrupt):
        return ["  (what was left could not be read; `reconciler plan` shows it)"]
    wanted = [pc.change.index for pc in plan.changes]
    lines = []
    for x in sorted(snap.indexes, key=lambda x: (x.schema, x.name)):
        origin = leftover_of(x.name, wanted) if is_leftover(x.name) else None
        if origin is not None:
            lines.append(f"  left: {x.schema}.{x.name}, the old {origin} renamed aside by its replace: the next apply "
                         f"drops it once {origin} is built, or renames it back if the spec returns to it")
        elif not x.valid and not x.being_built and not x.parent_index:
            lines.append(f"  left: {x.schema}.{x.name} (INVALID): the next apply rebuilds or removes it")
    return lines


def _summary(ex: Executor, plan: Plan, printer, interrupted: bool = False, left: list[str] = ()) -> None:
    done = {id(o.change) for o in ex.outcomes if o.ok}
    lines = []
    for o in ex.outcomes:
        c = o.change.change
        state = "done" if o.ok else "FAILED"
        lines.append(f"  {state:<7}{c.action} {shown(c.index)} ({o.seconds:.2f}s"
                     + (f", {o.size_bytes:,} bytes)" if o.size_bytes else ")"))
    for pc in plan.changes:
        if id(pc) not in done and not any(o.change is pc for o in ex.outcomes):
            lines.append(f"  not run {pc.change.action} {shown(pc.change.index)}")
    head = "Interrupted. " if interrupted else ""
    ok = sum(1 for o in ex.outcomes if o.ok)
    printer(ev.Info(f"{head}Summary: {ok} of {len(plan.changes)} change(s) done.\n" + "\n".join(lines + list(left))))
