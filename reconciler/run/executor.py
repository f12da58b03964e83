"""Runs a `Plan` on a live database without blocking it; reports through callbacks.

One job: execute. Every statement runs alone in autocommit (CONCURRENTLY cannot run inside a
transaction block), preceded by its own `SET lock_timeout` / `SET statement_timeout`; every
statement sent is recorded (`Executor.sent`) so tests can assert order and timeouts.

- Lock timeouts (SQLSTATE 55P03) are retried with jittered exponential backoff (pgroll
  `pkg/db/db.go`, through `wait.wait_until`, like every wait here); each retry first removes
  what the failed try left (an INVALID index).
- A concurrent statement (CREATE/DROP/REINDEX ... CONCURRENTLY) is watched from a second
  session: its wait for the table's lock is bounded by the lock timeout there (the watcher
  cancels it and the try is retried), while its waits for other transactions (writers before
  the build, old snapshots before it is valid) are reported as they happen (pid, age, query)
  and bounded by the build timeout only. PostgreSQL's own lock_timeout cannot tell the two
  apart: it would cancel a build that waits for an old snapshot after scanning the whole
  table, again and again (polar PR 14583). Without a second session, lock_timeout is used.
- Partitioned tables resume per partition: an equivalent index already on a partition is
  attached instead of built again.
- After each change its post-condition is verified (exists, VALID, same definition).
What must happen is decided by diff/planner; this module never decides to drop anything.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psycopg

from ..core.ident import qualified
from ..core.index import IndexDef
from ..core.kinds import Action, OpKind
from ..core.plan import Operation, Plan, PlannedChange
from ..core.redact import redact_query
from ..errors import ApplyError
from ..reconcile.naming import reindex_leftover_names, unnamed_index_names
from . import events as ev
from .wait import SYSTEM, Backoff, Clock, GaveUp, NotYet, wait_until

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
ADVISORY_KEY = 0x7265636F6E63  # "reconc": one apply per database at a time


@dataclass(frozen=True)
class _Failed:
    """Why a try of a statement failed (the state a retry reports)."""

    message: str
    sqlstate: str | None


@dataclass
class Outcome:
    change: PlannedChange
    ok: bool
    seconds: float
    size_bytes: int = 0
    error: str | None = None


@dataclass
class Executor:
    """Carries out a plan on one autocommit connection (`conn`); `monitor_dsn` opens a second
    connection to poll build progress."""

    conn: psycopg.Connection
    emit: ev.Emit = ev.ignore
    retries: int = 5
    monitor_dsn: str | None = None
    verify: Callable[[PlannedChange], str | None] | None = None   # returns a problem or None
    # (schema, table, desired) → [(index name, valid, (schema, name) of the index it is attached to, oid)]
    find_on_partition: Callable[[str, str, IndexDef], list[tuple[str, bool, tuple[str, str] | None, int]]] | None = None
    progress_interval: float = 1.0
    sent: list[str] = field(default_factory=list)
    backoff_base: float = 0.2                              # first retry delay (s); doubles, jittered
    clock: Clock = SYSTEM
    outcomes: list[Outcome] = field(default_factory=list)
    # (statement, lock limit in ms) of every statement whose lock wait the watcher bounded
    watched: list[tuple[str, int]] = field(default_factory=list)
    _partition_index: dict = field(default_factory=dict)   # (change, table) → its index (schema, name)
    _cleanups: dict = field(default_factory=dict)          # id(operation) → its cleanup (see _cleanup_of)

    # -- plumbing ---------------------------------------------------------------------------

    def run_sql(self, sql: str, params=None):
        """Send one statement through the extended query protocol, which refuses a string of
        several: whatever a statement's text holds, it runs as one statement. psycopg uses the
        simple protocol when there are no parameters, so the result format is set to binary to
        force the extended one."""
        self.sent.append(sql)
        if params is None:
            return self.conn.execute(sql, prepare=False, binary=True)
        return self.conn.execute(sql, params, prepare=False)

    def _set_timeouts(self, op: Operation) -> None:
        self.run_sql(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms'")
        self.run_sql(f"SET statement_timeout = '{op.statement_timeout_ms or 0}ms'")

    def backend_pid(self) -> int:
        return self.conn.info.backend_pid

    # -- the plan ---------------------------------------------------------------------------

    def execute(self, plan: Plan) -> list[Outcome]:
        for pc in plan.changes:
            c = pc.change
            started = time.monotonic()
            self.emit(ev.ChangeStart(c.action, c.schema, c.table, c.index))
            try:
                for op in pc.operations:
                    try:
                        self._operation(op, pc)
                    except KeyboardInterrupt:
                        # psycopg has cancelled the statement; a cancelled CIC leaves an INVALID index
                        self._after_interrupt(op, pc)
                        self.outcomes.append(Outcome(pc, False, time.monotonic() - started, error="interrupted"))
                        raise
                problem = self.verify(pc) if self.verify else None
                if problem:
                    raise ApplyError(f"{c.action} {c.index}: post-condition failed: {problem}")
            except ApplyError as e:
                self.outcomes.append(Outcome(pc, False, time.monotonic() - started, error=e.message))
                self.emit(ev.ChangeFailed(c.index, e.message))
                raise
            size = self._size(c.schema, c.index) if c.action is not Action.DROP else 0
            self.outcomes.append(Outcome(pc, True, time.monotonic() - started, size))
            self.emit(ev.ChangeDone(c.action, c.index, round(time.monotonic() - started, 3), size))
        return self.outcomes

    def _after_interrupt(self, op: Operation, pc: PlannedChange) -> None:
        try:
            if self.conn.info.transaction_status != 0:  # not idle: the cancel left us mid-statement
                self.conn.cancel_safe() if hasattr(self.conn, "cancel_safe") else self.conn.cancel()
            cleanup = self._cleanups.get(id(op))
            if cleanup is not None:
                # one line for one removal (and none when there was nothing to remove)
                cleanup("interrupted: removed the INVALID leftover of the cancelled build")
        except (psycopg.Error, KeyboardInterrupt):
            self.emit(ev.Info("interrupted: could not clean up; the next plan shows what remains and the next "
                              "apply finishes it"))

    def _size(self, schema: str, name: str) -> int:
        row = self.conn.execute("SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON "
                                "n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                                (schema, name)).fetchone()
        return row[0] if row else 0

    def _operation(self, op: Operation, pc: PlannedChange) -> None:
        kind = op.kind
        if kind is OpKind.ATTACH:
            return  # carried out together with its build_partition step
        if kind is OpKind.CHECK_UNIQUE:
            self._set_timeouts(op)
            rows = self._with_retries(op, lambda: self.run_sql(op.sql).fetchall())
            if rows:
                sample = "; ".join("(" + ", ".join(_shown(v) for v in r[:-1]) + f") ×{r[-1]}" for r in rows)
                raise ApplyError(f"cannot build UNIQUE index {op.target}: duplicate keys exist, e.g. {sample}",
                                 "remove the duplicates (or make the index non-unique), then apply again")
            return
        if kind in (OpKind.BUILD_PARTITION, OpKind.BUILD_SUBPARENT):
            self._partition(op, pc)
            return
        if kind is OpKind.RENAME:
            self._rename(op, pc)
            return
        if kind is OpKind.ANALYZE:
            # Statistics help the planner but the index is built: a table too busy to ANALYZE
            # now is a warning, not a failed change (autovacuum analyzes it later).
            self._set_timeouts(op)
            try:
                self._with_retries(op, lambda: self.run_sql(op.sql))
            except ApplyError as e:
                self.emit(ev.Info(f"  warning: {e.message}; run it later"))
            return
        self._set_timeouts(op)
        cleanup = None
        if kind is OpKind.BUILD:
            cleanup = self._cleanup_of(op, {op.target})
        elif kind is OpKind.REINDEX:
            cleanup = self._cleanup_of(op, set(reindex_leftover_names(op.target)))
        self._with_retries(op, lambda: self._run_with_progress(op), cleanup)

    def _with_retries(self, op: Operation, fn: Callable, cleanup: Callable | None = None):
        """Run `fn` (which sends `op`), retrying a lock timeout with jittered backoff, at most
        `retries` more times. Before each retry `cleanup` removes what the failed try left; a
        cleanup that could not finish (it is bounded by the lock timeout too) is tried again."""
        dirty = False   # the cleanup of the last failed try could not finish

        def attempt(n: int):
            nonlocal dirty
            if n > 1:
                self._set_timeouts(op)
            try:
                if dirty and cleanup is not None:
                    cleanup()
                    dirty = False
                self.emit(ev.Statement(op.sql, n))
                return fn()
            except (psycopg.Error, _Waited) as e:
                if isinstance(e, _Waited):
                    code, msg = e.sqlstate, e.message
                else:
                    code, msg = e.sqlstate, (e.diag.message_primary or str(e)).strip()
                retryable = code in (LOCK_NOT_AVAILABLE,) or (code == QUERY_CANCELED and "lock" in msg.lower())
                if cleanup is not None:
                    try:
                        cleanup()
                        dirty = False
                    except psycopg.Error:
                        dirty = True
                if not retryable:
                    raise self._failure(op, _Failed(msg, code), dirty, retryable=False) from None
                return NotYet(_Failed(msg, code))

        def report(w) -> None:
            self.emit(ev.Retry(op.sql, w.tries + 1, w.state.message, round(w.delay_s, 2)))

        try:
            return wait_until(attempt, backoff=Backoff(base_s=self.backoff_base), tries=self.retries + 1,
                              on_wait=report, clock=self.clock)
        except GaveUp as g:
            raise self._failure(op, g.state, dirty, retryable=True) from None

    @staticmethod
    def _failure(op: Operation, failed: _Failed, dirty: bool, retryable: bool) -> ApplyError:
        msg = failed.message
        hint = "another session held a conflicting lock for every try; raise --retries/--lock-timeout" \
            if retryable else None
        if dirty:
            msg += (f"; the INVALID leftover of {op.target} could not be dropped yet (a session holds a lock on "
                    "the table); the next apply removes it")
        return ApplyError(f"{op.sql}: {msg} (SQLSTATE {failed.sqlstate})", hint)

    def _run_with_progress(self, op: Operation):
        if not op.concurrent or not self.monitor_dsn:
            return self.run_sql(op.sql)
        watch = _Watch(self, op, self.backend_pid())
        watch.start()
        watched = watch.connected()
        if watched:
            # the watcher bounds the wait for the table's lock; PostgreSQL must not cancel the
            # waits for other transactions, which only the build timeout bounds
            self.run_sql("SET lock_timeout = 0")
            self.watched.append((op.sql, op.lock_timeout_ms or 0))
        try:
            result = self.run_sql(op.sql)
            if watched:   # what follows (verification, sizes) waits for locks no longer than before
                self.run_sql(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms'")
            return result
        except psycopg.errors.QueryCanceled as e:
            if watch.cancelled is not None:
                raise _Waited(watch.cancelled, LOCK_NOT_AVAILABLE) from None
            if watch.sessions and "statement timeout" in str(e):
                raise _Waited(f"{(e.diag.message_primary or str(e)).strip()} (the build timeout) while it waited for "
                              "other transactions to end: " + _sessions(watch.sessions), e.sqlstate) from None
            raise
        finally:
            watch.stop()

    # -- specific steps    # -- specific steps ---------------------------------------------------------------------

    def _index_state(self, schema: str, name: str) -> tuple[bool, bool] | None:
        """(valid, being built by someone) of an index, or None if absent."""
        row = self.conn.execute(
            "SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid "
            "AND p.pid <> pg_backend_pid()) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_index i ON i.indexrelid = c.oid WHERE n.nspname = %s AND c.relname = %s", (schema, name)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    # Cleanup drops only what this run made: an INVALID index on the statement's own table that
    # was not there before the statement (its OID is new) and whose name is the one the
    # statement gives it (or one PostgreSQL chooses for it: `reconcile.naming`), compared as
    # text. Never a name pattern, never an index of another table, never one being built.

    def _indexes_on(self, table: str) -> dict[int, tuple[str, str, bool, bool]]:
        """oid → (schema, name, valid, being built by another session) of every index on `table`
        (a qualified name, bound as a parameter)."""
        rows = self.conn.execute(
            "SELECT c.oid, n.nspname, c.relname, i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
            "WHERE p.index_relid = c.oid AND p.pid <> pg_backend_pid()) FROM pg_index i JOIN pg_class c ON "
            "c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = %s::regclass",
            (table,)).fetchall()
        return {oid: (schema, name, valid, busy) for oid, schema, name, valid, busy in rows}

    def _cleanup_of(self, op: Operation, names: set[str]) -> Callable[[], bool]:
        """The cleanup of one statement, from a snapshot of its table's indexes taken now (before
        it runs); also kept for an interrupt (`_after_interrupt`)."""
        before = set(self._indexes_on(op.table)) if op.table else set()

        def cleanup(detail: str = "dropped the INVALID leftover of a failed build") -> bool:
            dropped = False
            for oid, (schema, name, valid, busy) in self._indexes_on(op.table).items() if op.table else ():
                if oid not in before and name in names and not valid and not busy:
                    self._drop_leftover(schema, name, op, detail)
                    dropped = True
            return dropped

        self._cleanups[id(op)] = cleanup
        return cleanup

    def _drop_leftover(self, schema: str, name: str, op: Operation,
                       detail: str = "dropped the INVALID leftover of a failed build") -> None:
        """DROP one INVALID leftover, bounded by the timeouts of `op` (DROP INDEX CONCURRENTLY
        waits for every session holding a lock on the table: with no lock_timeout it would wait
        as long as the session that made the build fail)."""
        self._set_timeouts(op)
        self.run_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(schema, name)}")
        self.emit(ev.Cleanup(name, detail))

    def _being_built(self, schema: str, name: str) -> bool:
        state = self._index_state(schema, name)
        return state is not None and state[1]

    def _rename(self, op: Operation, pc: PlannedChange) -> None:
        c = pc.change
        # resumable: the rename may have happened in a run that was killed right after it
        old = c.old_name if c.action is Action.RENAME else c.index
        new = op.target
        if c.action is Action.REPLACE:
            old = c.live.name
        schema = c.schema
        if self._index_state(schema, new) is not None and self._index_state(schema, old) is None:
            self.emit(ev.Skip(sql=op.sql, detail="already renamed"))
            return
        self._set_timeouts(op)
        self._with_retries(op, lambda: self.run_sql(op.sql))

    def _partition(self, op: Operation, pc: PlannedChange) -> None:
        """Make sure one table below the parent has its index, attached to the index on its
        parent table. A leaf gets a concurrent build, a sub-partitioned table CREATE INDEX ON
        ONLY; an equivalent index already there (a resumed run, a hand-made one) is adopted."""
        d = pc.change.desired
        leaf = op.kind is OpKind.BUILD_PARTITION
        schema, table = _split_qualified(op.table)
        if op.parent == d.qualified_table or op.parent is None:
            parent_index = (d.schema, d.name)
        else:
            parent_index = self._partition_index.get((pc.change.index, op.parent))
            if parent_index is None:
                raise ApplyError(f"no index on {op.parent} to attach the index of {op.table} to")
        existing = self.find_on_partition(schema, table, d) if self.find_on_partition else []
        mine = next((n for n, valid, parent, *_ in existing if parent == parent_index), None)
        if mine is not None:
            self._partition_index[(pc.change.index, op.table)] = (schema, mine)
            self.emit(ev.Skip(index=mine, detail=f"{table}: already attached"))
            return
        free = [(n, valid) for n, valid, parent, *_ in existing if parent is None]
        chosen = next((n for n, valid in free if valid or not leaf), None)
        # PostgreSQL names an index built on the partition without a name; an INVALID one of
        # exactly such a name and our definition is what an interrupted run left: drop it.
        ours = set(unnamed_index_names(table, [None if k.is_expression else k.expr for k in d.keys]
                                       + list(d.include)))
        for name, valid in free:
            if leaf and not valid and name in ours and not self._being_built(schema, name):
                self._drop_leftover(schema, name, op)
        if chosen is None:
            self._set_timeouts(op)
            before = {oid for *_, oid in existing}
            self._with_retries(op, lambda: self._run_with_progress(op),
                               self._cleanup_of(op, ours) if leaf else None)
            found = self.find_on_partition(schema, table, d) if self.find_on_partition else []
            chosen = next((n for n, valid, parent, oid in found if parent is None and oid not in before
                           and (valid or not leaf)), None)
            if chosen is None:
                raise ApplyError(f"built an index on {op.table} but cannot find it to attach")
        self._partition_index[(pc.change.index, op.table)] = (schema, chosen)
        # the planned attach step of this table carries the statement timeout it must run with
        planned = next((o for o in pc.operations if o.kind is OpKind.ATTACH and o.table == op.table), None)
        attach = Operation(f"ALTER INDEX {qualified(*parent_index)} ATTACH PARTITION {qualified(schema, chosen)}",
                           OpKind.ATTACH, op.lock_timeout_ms, planned.statement_timeout_ms if planned else 60000, False,
                           d.name, op.table, op.parent)
        self._set_timeouts(attach)
        self._with_retries(attach, lambda: self.run_sql(attach.sql))

    # -- advisory lock and session checks ----------------------------------------------------

    def acquire_lock(self, wait_ms: int = 0, poll_s: float = 1.0) -> None:
        """One apply per database: a session-level advisory lock taken with pg_try_advisory_lock
        and polled (a blocking pg_advisory_lock can deadlock with a CIC: atlas `driver.go`).

        Waits at most `wait_ms` for another holder, saying who it is, what it runs and for how
        long, again whenever that changes: after a `kill -9` of an apply, its server session
        goes on building (and holds the lock) until it notices its client is gone (at most
        `client_connection_check_interval`, set by `check_session`), and a CI retry that starts
        at once must wait for that rather than fail."""

        def try_lock(n: int):
            if self.run_sql("SELECT pg_try_advisory_lock(%s)" % ADVISORY_KEY).fetchone()[0]:
                return True
            return NotYet(self._lock_holder())

        told: list[str] = []

        def report(w) -> None:
            doing = w.state.split(": ", 1)[-1] if ": " in w.state else w.state
            if not told or told[-1] != doing:
                told.append(doing)
                limit = f"; waiting up to {wait_ms / 1000:g}s for it (--wait-for-lock)" if w.first else ""
                self.emit(ev.Waiting(detail=f"another apply holds the lock: {w.state}{limit}"))

        try:
            wait_until(try_lock, backoff=Backoff(base_s=poll_s, factor=1.0, cap_s=poll_s, jitter=0.0),
                       timeout_s=wait_ms / 1000, on_wait=report, clock=self.clock)
        except GaveUp as g:
            waited = f" (waited {g.elapsed_s:.0f}s)" if wait_ms else ""
            raise ApplyError(f"another apply is running on this database{waited}: {g.state}",
                             "wait for it, or pass a longer --wait-for-lock (e.g. 30min)") from None

    def _lock_holder(self) -> str:
        """Who holds the apply lock: pid, client, and what it is doing and since when."""
        holder = self.conn.execute(
            "SELECT a.pid, a.application_name, a.client_addr::text, a.state, "
            "extract(epoch FROM now() - a.backend_start)::float8, extract(epoch FROM now() - a.query_start)::float8, "
            "left(a.query, 4000), p.phase, "
            "CASE WHEN p.blocks_total > 0 THEN round(100.0 * p.blocks_done / p.blocks_total) END "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s", (ADVISORY_KEY,)).fetchone()
        if holder is None:
            return "another session"
        pid, app, addr, state, connected, since, query, phase, percent = holder
        query = redact_query(query or "", 160)   # its values are not ours to print (see _Watch._report)
        who = f"pid {pid} ({app or 'no application_name'}, from {addr or 'local socket'}, connected {connected:.0f}s ago)"
        if state == "active":
            progress = f" [{phase}" + (f", {percent:.0f}%" if percent is not None and not phase.startswith("waiting")
                                       else "") + "]" if phase else ""
            return f"{who}: running for {since:.0f}s: {query}{progress}"
        return f"{who}: {state or 'idle'} for {since or 0:.0f}s, last: {query}"

    def release_lock(self) -> None:
        try:
            self.run_sql("SELECT pg_advisory_unlock(%s)" % ADVISORY_KEY)
        except psycopg.Error:
            pass

    def check_session(self) -> None:
        """Refuse a transaction-pooling proxy (PgBouncer `pool_mode = transaction` or
        `statement`): SET lock_timeout, the session advisory lock and a CONCURRENTLY build must
        all run in one server session, and such a proxy hands each transaction to whichever
        server session is free.

        Two probes, because either alone can be fooled: a session mark (a custom setting with a
        random token) must still be there, on the same backend, for each of our statements
        (under load another client takes our server session between them); and a second client
        of the same DSN must never see that mark nor our backend (an idle pool hands our
        server session straight to it, which is exactly what a busy one would do to apply). A
        direct connection or a session-pooling proxy passes both: a server session belongs to
        one client until it disconnects."""
        if self.conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            raise ApplyError("the server is a hot standby (read-only, in recovery): nothing can be built or dropped "
                             "here; nothing changed", "run apply against the primary; plan and drift work on a standby")
        token = secrets.token_hex(8)
        pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.conn.execute(f"SET reconciler.session_probe = '{token}'")
        shared = None
        other = None
        try:
            if self.monitor_dsn is not None:
                try:
                    other = psycopg.connect(self.monitor_dsn, autocommit=True, connect_timeout=10,
                                            application_name="reconciler-probe")
                except psycopg.Error:
                    other = None      # cannot open a second session: the first probe still runs
            # A probe samples: under a busy transaction pool our statements may happen to reach
            # our server session again by luck (PgBouncer hands out the session released last).
            # Each round is two short round trips; 25 rounds make a pass by luck vanishingly rare
            # where 3 let one in ten through (tests/test_apply.py, with other clients busy).
            for _ in range(_PROBE_ROUNDS):
                mine = self.conn.execute("SELECT pg_backend_pid(), current_setting('reconciler.session_probe', true)"
                                         ).fetchone()
                if mine != (pid, token):
                    shared = "our statements reached different server sessions"
                    break
                if other is not None:
                    theirs = other.execute("SELECT pg_backend_pid(), current_setting('reconciler.session_probe', true)"
                                           ).fetchone()
                    if theirs[0] == pid or theirs[1] == token:
                        shared = "another client of the same address was handed our server session"
                        break
        finally:
            if other is not None:
                other.close()
        if shared:
            raise ApplyError("the connection goes through a transaction-pooling proxy (" + shared + "); "
                             "CONCURRENTLY, its lock timeout and the apply lock need one server session; "
                             "nothing changed",
                             "connect to PostgreSQL directly or through a session-pooling port (PgBouncer "
                             "pool_mode = session)")
        self.conn.execute("RESET reconciler.session_probe")
        try:
            # PostgreSQL 14+: notice a vanished client during a long build and cancel it
            self.conn.execute("SET client_connection_check_interval = '5s'")
        except psycopg.Error:
            pass


_PROBE_ROUNDS = 25


def _shown(value) -> str:
    """A key value of the duplicate sample (binary results: a type without a binary loader
    arrives as bytes, its text form for most types)."""
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    return repr(value)


class _Waited(Exception):
    """A concurrent statement the watcher cancelled (its lock wait was too long), or one that ran
    out of build timeout waiting for other transactions: the message says which."""

    def __init__(self, message: str, sqlstate: str | None):
        super().__init__(message)
        self.message, self.sqlstate = message, sqlstate


def _sessions(sessions: tuple[ev.Session, ...]) -> str:
    return ", ".join(f"pid {x.pid} ({x.state}, transaction {x.age_s:.0f}s old: {x.query})" for x in sessions)


class _Watch(threading.Thread):
    """Watches one concurrent statement (backend `pid`) from a session of its own.

    - Its wait for a lock on a relation (`pg_locks`, not granted, `waitstart`) is cancelled
      once it passes the operation's lock timeout: the same bound `lock_timeout` gives, but for
      that wait alone.
    - Its waits for other transactions (`pg_stat_progress_create_index`: a "waiting for ..."
      phase and `current_locker_pid`) are reported as `Waiting` events when the session it
      waits for changes (pid, transaction age, state, query), and left to the build timeout.
    - Its progress is reported every `progress_interval`; in a waiting phase without a
      fraction (the blocks scanned before say nothing about the wait)."""

    POLL_S = 0.1

    def __init__(self, ex: "Executor", op: Operation, pid: int):
        super().__init__(daemon=True, name=f"reconciler-watch-{pid}")
        self.ex, self.op, self.pid = ex, op, pid
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._ok = False
        self.cancelled: str | None = None          # why the watcher cancelled the statement
        self.sessions: tuple[ev.Session, ...] = ()  # what the statement waits for, last seen

    def connected(self) -> bool:
        self._ready.wait(30)
        return self._ok

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        try:
            mon = psycopg.connect(self.ex.monitor_dsn, autocommit=True, application_name="reconciler-monitor",
                                  connect_timeout=10)
        except psycopg.Error:
            self._ready.set()
            return
        try:
            self._ok = True
            self._ready.set()
            self._watch(mon)
        except psycopg.Error:
            return
        finally:
            mon.close()

    def _watch(self, mon: psycopg.Connection) -> None:
        limit_s = (self.op.lock_timeout_ms or 0) / 1000
        started = time.monotonic()
        last_progress = 0.0
        locker = None
        while not self._halt.wait(self.POLL_S):
            if limit_s > 0 and self.cancelled is None:
                # one statement: the lock is checked and the cancel sent together
                row = mon.execute(
                    "SELECT l.relation::regclass::text, pg_blocking_pids(l.pid), pg_cancel_backend(l.pid) "
                    "FROM pg_locks l WHERE l.pid = %s AND NOT l.granted AND l.locktype = 'relation' "
                    "AND l.waitstart IS NOT NULL AND clock_timestamp() - l.waitstart > make_interval(secs => %s) "
                    "LIMIT 1", (self.pid, limit_s)).fetchone()
                if row is not None:
                    holders = ", ".join(map(str, row[1])) or "another session"
                    self.cancelled = (f"canceling statement due to lock timeout: waited {limit_s:g}s for a lock "
                                      f"on {row[0]} held by pid {holders}")
                    continue
            now = time.monotonic()
            if now - last_progress < self.ex.progress_interval:
                continue
            last_progress = now
            row = mon.execute(
                "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total, "
                "current_locker_pid FROM pg_stat_progress_create_index WHERE pid = %s", (self.pid,)).fetchone()
            if row is None:
                continue
            phase, bd, bt, td, tt, ld, lt, current = row
            waiting = phase.startswith("waiting for")
            frac = None if waiting else (bd / bt) if bt else (td / tt) if tt else None
            elapsed = now - started
            eta = round(elapsed * (1 - frac) / frac, 1) if frac and frac > 0.01 else None
            self.ex.emit(ev.Progress(self.op.target, phase, bd, bt, td, tt, ld, lt, current or None,
                                     round(frac, 4) if frac is not None else None, eta, round(elapsed, 1)))
            if waiting and current and current != locker:
                locker = current
                self._report(mon, phase, current, ld, lt)
            elif not waiting:
                locker = None

    def _report(self, mon: psycopg.Connection, phase: str, pid: int, done: int, total: int) -> None:
        row = mon.execute("SELECT pid, coalesce(extract(epoch FROM now() - xact_start), 0)::float8, "
                          "coalesce(state, ''), left(coalesce(query, ''), 4000) FROM pg_stat_activity WHERE pid = %s",
                          (pid,)).fetchone()
        if row is None:
            return
        # another session's text holds its values (an ALTER ROLE ... PASSWORD): only the shape of
        # its statement is shown
        self.sessions = (ev.Session(row[0], round(row[1], 1), row[2], redact_query(row[3])),)
        of = f" ({done + 1} of {total})" if total else ""
        self.ex.emit(ev.Waiting(self.op.target, f"{phase}: the build waits for this transaction to end{of}; "
                                "the build timeout bounds the wait", self.sessions))


def _split_qualified(text: str) -> tuple[str, str]:
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                cur += '"'
                i += 2
                continue
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return (parts[0], parts[1]) if len(parts) == 2 else ("public", parts[0])


__all__ = ["ADVISORY_KEY", "Executor", "Outcome"]
