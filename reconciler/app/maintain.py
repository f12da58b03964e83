"""`reconciler maintain`: the upkeep `health` calls for, with `apply`'s safety.

One job: the safe order of the maintain workflow. The session is checked (no transaction
pooler), the advisory lock `apply` uses is taken (one apply or maintain per database), the
statistics are read (READ ONLY, bounded), `health.maintain` decides the steps, the plan is
shown, then (approved, or --auto-approve) each step runs through `run.maintain`: per-statement
lock timeouts with retries, progress, the leftover of a failed REINDEX removed. A step that
fails is reported and the others still run; the exit code says whether all succeeded.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..errors import ApplyError, ReconcilerError
from ..health import Thresholds, bloat_candidates, human_bytes
from ..health.maintain import MaintenanceStep, maintenance_plan
from ..pg import stats
from ..pg.connection import connect, resolve_dsn
from ..reconcile.planner import Timeouts
from ..run import events as ev
from ..run.executor import Executor
from ..run.maintain import Maintainer
from ..spec import Spec, glob_to_like, load_spec
from .apply import _Printer, fleet_recorder


@dataclass(frozen=True)
class MaintainOptions:
    files: tuple[str, ...] = ()
    database: str | None = None
    indexes: tuple[str, ...] = ()        # --index, as typed: NAME or SCHEMA.NAME (quoted where needed)
    vacuum: bool = False
    exact: bool = False
    dry_run: bool = False
    auto_approve: bool = False
    timeouts: Timeouts = Timeouts()
    retries: int = 5
    fmt: str = "text"
    wait_for_lock_ms: int = 0


_PART = r'"(?:[^"]|"")*"|[^."]+'


def parse_index_name(text: str) -> tuple[str | None, str]:
    """``idx`` → (None, "idx"); ``public.idx`` → ("public", "idx"); ``"My S"."Idx"`` → ("My S",
    "Idx"). Unquoted parts are taken literally (names are literal everywhere in reconciler)."""
    m = re.fullmatch(rf"\s*({_PART})(?:\.({_PART}))?\s*", text)
    if not m:
        raise ReconcilerError(f"--index {text!r}: expected NAME or SCHEMA.NAME")

    def unquote(p: str) -> str:
        return p[1:-1].replace('""', '"') if p.startswith('"') else p

    if m.group(2) is None:
        return None, unquote(m.group(1))
    return unquote(m.group(1)), unquote(m.group(2))


def _spec(opts: MaintainOptions) -> Spec | None:
    if opts.files or Path("indexes.yaml").exists() or not opts.indexes:
        return load_spec(list(opts.files) or ["indexes.yaml"])
    return None   # only --index, and no spec here: nothing else is touched


def render_plan_text(steps: list[MaintenanceStep]) -> str:
    runnable = [s for s in steps if s.operation]
    out = [f"Maintenance plan: {len(runnable)} step(s)"
           + (f", {len(steps) - len(runnable)} skipped" if len(runnable) < len(steps) else "")]
    for s in steps:
        out.append(f"  {s.kind:<8} {s.where}: {s.reason}")
        if s.operation:
            out.append(f"           {s.operation.sql};")
    return "\n".join(out)


def run_maintain(opts: MaintainOptions, *, confirm: Callable[[str], bool], echo: Callable, color: bool = False,
                 quiet: bool = False, loaded: tuple[Spec | None] | None = None,
                 connector: Callable = connect) -> bool:
    """`loaded`: (the spec,) when the caller already read it (a fleet reads it once);
    `connector`: how to connect (a fleet registers the connection, so Ctrl-C can cancel it)."""
    named_input = [parse_index_name(n) for n in opts.indexes]   # a bad name fails before connecting
    spec = _spec(opts) if loaded is None else loaded[0]
    thresholds = Thresholds.from_spec(spec.health) if spec is not None else Thresholds()
    printer = _Printer(opts.fmt, echo, color and opts.fmt == "text", quiet)
    dsn = resolve_dsn(opts.database)
    conn = connector(dsn, autocommit=True)
    ex = Executor(conn, emit=printer, retries=opts.retries, monitor_dsn=dsn)
    m = Maintainer(ex)
    locked = False
    try:
        ex.check_session()
        named = stats.resolve_indexes(conn, named_input)
        if not opts.dry_run:
            ex.acquire_lock(opts.wait_for_lock_ms)   # the lock apply takes: never both at once
            locked = True
        snap, managed = _read(conn, spec, named, opts)
        if snap.skipped:
            printer(ev.Info("left alone (another session holds or waits for an ACCESS EXCLUSIVE lock on them): "
                            + ", ".join(snap.skipped)))
        if opts.exact:
            wanted = sorted(set(bloat_candidates(snap, thresholds))
                            | {x.oid for x in snap.indexes if (x.schema, x.name) in {(n[0], n[1]) for n in named}})
            exact, note = stats.read_exact(conn, wanted, lock_timeout_ms=opts.timeouts.lock_ms)
            snap = replace(snap, exact=exact, exact_note=note)
            if note:
                printer(ev.Info(note))
        steps = maintenance_plan(snap, thresholds, spec, named=[(n[0], n[1]) for n in named], vacuum=opts.vacuum,
                                 timeouts=opts.timeouts, managed=managed)
        if opts.fmt == "json":
            echo(json.dumps({"event": "maintenance_plan", "database": snap.database,
                             "steps": [s.to_dict() for s in steps]}))
        elif not quiet:
            echo(render_plan_text(steps))
        runnable = [s for s in steps if s.operation]
        if not runnable:
            printer(ev.Info("Nothing to do: no bloated index, no abandoned leftover, no stale statistics."))
            return True
        if opts.dry_run:
            printer(ev.Info("dry run: nothing executed"))
            return True
        if not opts.auto_approve and not confirm("Run this maintenance?"):
            raise ApplyError("not approved; nothing changed")
        return _execute(m, runnable, printer, quiet)
    finally:
        if locked:
            ex.release_lock()
        conn.close()


def maintain_outcome(opts: MaintainOptions, spec: Spec | None, *, echo: Callable, connector: Callable):
    """`maintain` on one database of a fleet (no prompt: the caller asked for --auto-approve or
    --dry-run). The event log goes to `echo` as it happens; the outcome's summary is the run's
    last summary line."""
    from ..fleet import Outcome, Status

    said, record, no_prompt = fleet_recorder("maintain", echo)
    ok = run_maintain(opts, confirm=no_prompt, echo=record, loaded=(spec,), connector=connector)
    if opts.fmt == "json":
        details = [str(json.loads(ln).get("detail", "")) for ln in said if ln.startswith("{")]
    else:
        details = said
    lines = [ln.strip() for d in details for ln in d.splitlines()]
    summary = next((ln for ln in reversed(lines) if ln.startswith(("Summary:", "Interrupted.", "Nothing to do",
                                                                      "dry run"))), "Nothing to do.")
    return Outcome(Status.OK if ok else Status.FAILED, 0 if ok else 1, summary)


def _read(conn, spec: Spec | None, named: list[tuple[str, str, str, str]], opts: MaintainOptions):
    """The statistics of the managed tables, plus the tables of --index indexes; and which
    tables are managed (maintain decides on its own only for those)."""
    kw = {"lock_timeout_ms": opts.timeouts.lock_ms, "definitions": False}
    if spec is not None:
        snap = stats.read_stats(conn, spec.tables, patterns=[glob_to_like(g) for g in spec.table_globs]
                                + spec.glob_entry_patterns(), **kw)
    else:
        snap = stats.read_stats(conn, [], **kw)
    managed = {t.oid for t in snap.tables}
    have = {(t.schema, t.name) for t in snap.tables}
    extra = sorted({(ts, tn) for _, _, ts, tn in named} - have)
    if extra:
        more = stats.read_stats(conn, extra, **kw)
        known = {t.oid for t in snap.tables}
        snap = replace(snap, tables=snap.tables + tuple(t for t in more.tables if t.oid not in known),
                       indexes=snap.indexes + tuple(x for x in more.indexes if x.table_oid not in known),
                       skipped=snap.skipped + more.skipped)
    return snap, managed


def _execute(m: Maintainer, steps: list[MaintenanceStep], printer, quiet: bool = False) -> bool:
    results = []
    interrupted = False
    say = (lambda e: None) if quiet else printer   # -q: the summary and the failures only
    for s in steps:
        started = time.monotonic()
        say(ev.Info(f"{s.kind} {s.where}"))
        try:
            if s.kind == "drop":
                name = m.still_abandoned(s.oid)
                if name is None:
                    printer(ev.Skip(index=s.index, detail="no longer an abandoned INVALID index: left alone"))
                    results.append((s, "skipped", time.monotonic() - started, ""))
                    continue
            before = m.size(s.schema, s.index) if s.kind == "reindex" else 0
            m.run(s.operation)
            detail = ""
            if s.kind == "reindex":
                after = m.size(s.schema, s.index)
                detail = f": {human_bytes(before)} → {human_bytes(after)}"
            secs = time.monotonic() - started
            say(ev.Info(f"  done in {secs:.2f}s{detail}"))
            results.append((s, "done", secs, detail))
        except ApplyError as e:
            secs = time.monotonic() - started
            printer(ev.ChangeFailed(s.index or s.table, e.message))
            results.append((s, "FAILED", secs, e.message))
        except KeyboardInterrupt:
            results.append((s, "interrupted", time.monotonic() - started, ""))
            interrupted = True
            break
    done = sum(1 for r in results if r[1] in ("done", "skipped"))
    lines = [f"  {state:<8}{s.kind} {s.where} ({secs:.2f}s){detail if state == 'done' else ''}"
             for s, state, secs, detail in results]
    lines += [f"  not run {s.kind} {s.where}" for s in steps[len(results):]]
    head = "Interrupted. " if interrupted else ""
    printer(ev.Info(f"{head}Summary: {done} of {len(steps)} step(s) done.\n" + "\n".join(lines)))
    if interrupted:
        raise KeyboardInterrupt
    return all(r[1] in ("done", "skipped") for r in results)
