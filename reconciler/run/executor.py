"""Runs a `Plan` on a live database without blocking it; reports through callbacks.

One job: execute. Every statement runs alone in autocommit (CONCURRENTLY cannot run inside a
transaction block), preceded by its own `SET lock_timeout` / `SET statement_timeout`; every
statement sent is recorded (`Executor.sent`) so tests can assert order and timeouts.

- Lock timeouts (SQLSTATE 55P03) are retried with jittered exponential backoff (pgroll
  `pkg/db/db.go`, through `wait.wait_until`, like every wait here); each retry first removes
  what the failed try left (an INVALID index).
- Before a concurrent build, old transactions that the build would wait for are reported
  (pid, age, query) and waited out, bounded by the build timeout, instead of failing blindly
  (polar PR 14583: a short lock_timeout also kills a CIC waiting for old snapshots).
- Partitioned tables resume per partition: an equivalent index already on a partition is
  attached instead of built again.
- After each change its post-condition is verified (exists, VALID, same definition).
What must happen is decided by diff/planner; this module never decides to drop anything.
"""
from __future__ import annotations

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
from .wait import POLL_EVERY_SECOND, SYSTEM, Backoff, Clock, GaveUp, NotYet, wait_until

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
            if cleanup is not None and cleanup():
                self.emit(ev.Cleanup(op.target, "interrupted: removed the INVALID leftover of the cancelled build"))
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
        if kind in (OpKind.BUILD, OpKind.REINDEX):
            self._wait_for_old_transactions(op)
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
            except psycopg.Error as e:
                code = e.sqlstate
                msg = (e.diag.message_primary or str(e)).strip()
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
        stop = threading.Event()
        pid = self.backend_pid()
        t = threading.Thread(target=self._poll_progress, args=(pid, op, stop), daemon=True)
        t.start()
        try:
            return self.run_sql(op.sql)
        finally:
            stop.set()
            t.join(timeout=5)

    def _poll_progress(self, pid: int, op: Operation, stop: threading.Event) -> None:
        try:
            with psycopg.connect(self.monitor_dsn, autocommit=True, application_name="reconciler-monitor") as mon:
                started = time.monotonic()
                while not stop.wait(self.progress_interval):
                    row = mon.execute(
                        "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, "
                        "lockers_total, current_locker_pid FROM pg_stat_progress_create_index WHERE pid = %s",
                        (pid,)).fetchone()
                    if row is None:
                        continue
                    phase, bd, bt, td, tt, ld, lt, locker = row
                    frac = (bd / bt) if bt else (td / tt) if tt else None
                    eta = None
                    elapsed = time.monotonic() - started
                    if frac and frac > 0.01:
                        eta = round(elapsed * (1 - frac) / frac, 1)
                    self.emit(ev.Progress(op.target, phase, bd, bt, td, tt, ld, lt, locker or None,
                                          round(frac, 4) if frac is not None else None, eta, round(elapsed, 1)))
        except psycopg.Error:
            return

    # -- specific steps ---------------------------------------------------------------------

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

        def cleanup() -> bool:
            dropped = False
            for oid, (schema, name, valid, busy) in self._indexes_on(op.table).items() if op.table else ():
                if oid not in before and name in names and not valid and not busy:
                    self._drop_leftover(schema, name, op)
                    dropped = True
            return dropped

        self._cleanups[id(op)] = cleanup
        return cleanup

    def _drop_leftover(self, schema: str, name: str, op: Operation) -> None:
        """DROP one INVALID leftover, bounded by the timeouts of `op` (DROP INDEX CONCURRENTLY
        waits for every session holding a lock on the table: with no lock_timeout it would wait
        as long as the session that made the build fail)."""
        self._set_timeouts(op)
        self.run_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(schema, name)}")
        self.emit(ev.Cleanup(name, "dropped the INVALID leftover of a failed build"))

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

    def _wait_for_old_transactions(self, op: Operation) -> None:
        """A concurrent build waits for every transaction older than itself. Report those that
        would hold it up (long-running or idle in transaction) and wait them out, within the
        build timeout, so the short lock timeout does not kill the build in that wait."""
        limit_ms = op.lock_timeout_ms or 0

        def old_transactions(n: int):
            rows = self.conn.execute(
                "SELECT pid, now() - xact_start AS age, state, left(query, 4000) FROM pg_stat_activity "
                "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND datname = current_database() AND now() - xact_start > make_interval(secs => %s) "
                "ORDER BY xact_start", (max(limit_ms, 1000) / 1000.0,)).fetchall()
            return NotYet(rows) if rows else None

        def report(w) -> None:
            if w.first:
                # another session's text holds its values (an ALTER ROLE ... PASSWORD): only the
                # shape of its statement is shown
                self.emit(ev.Waiting(op.target, "old transactions would hold up the build; waiting for them to end",
                                     tuple(ev.Session(p, round(a.total_seconds(), 1), s, redact_query(q or ""))
                                           for p, a, s, q in w.state)))

        try:
            wait_until(old_transactions, backoff=POLL_EVERY_SECOND, on_wait=report, clock=self.clock,
                       timeout_s=op.statement_timeout_ms / 1000 if op.statement_timeout_ms else 3600 * 24)
        except GaveUp as g:
            pids = ", ".join(f"{p} ({s}, {a.total_seconds():.0f}s)" for p, a, s, q in g.state)
            raise ApplyError(f"{op.target}: old transactions did not end within the build timeout: {pids}",
                             "end or wait for those sessions (pg_terminate_backend) and apply again") from None

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
            if leaf:
                self._wait_for_old_transactions(op)
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
        and polled (a blocking pg_advisory_lock can deadlock with a CIC: atlas `driver.go`)."""

        def try_lock(n: int):
            if self.run_sql("SELECT pg_try_advisory_lock(%s)" % ADVISORY_KEY).fetchone()[0]:
                return True
            return NotYet(self._lock_holder())

        def report(w) -> None:
            if w.first:
                self.emit(ev.Waiting(detail=f"another apply holds the lock: {w.state}"))

        try:
            wait_until(try_lock, backoff=Backoff(base_s=poll_s, factor=1.0, cap_s=poll_s, jitter=0.0),
                       timeout_s=wait_ms / 1000, on_wait=report, clock=self.clock)
        except GaveUp as g:
            raise ApplyError(f"another apply is running on this database: {g.state}",
                             "wait for it, or pass --wait-for-lock 10min") from None

    def _lock_holder(self) -> str:
        holder = self.conn.execute(
            "SELECT a.pid, a.application_name, a.client_addr::text, now() - a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s", (ADVISORY_KEY,)).fetchone()
        if holder is None:
            return "another session"
        return (f"pid {holder[0]} ({holder[1] or 'no application_name'}, from {holder[2] or 'local socket'}, "
                f"connected {holder[3].total_seconds():.0f}s ago)")

    def release_lock(self) -> None:
        try:
            self.run_sql("SELECT pg_advisory_unlock(%s)" % ADVISORY_KEY)
        except psycopg.Error:
            pass

    def check_session(self) -> None:
        """Refuse a transaction-pooling proxy: CONCURRENTLY and session locks need one backend."""
        pid1 = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.conn.execute("SET reconciler.session_probe = 'on'")
        pid2, probe = self.conn.execute(
            "SELECT pg_backend_pid(), current_setting('reconciler.session_probe', true)").fetchone()
        if pid1 != pid2 or probe != "on":
            raise ApplyError("the connection goes through a transaction-pooling proxy (each statement may reach "
                             "another server session); CONCURRENTLY and session locks cannot work through it",
                             "connect to PostgreSQL directly or through a session-pooling port")
        try:
            # PostgreSQL 14+: notice a vanished client during a long build and cancel it
            self.conn.execute("SET client_connection_check_interval = '5s'")
        except psycopg.Error:
            pass


def _shown(value) -> str:
    """A key value of the duplicate sample (binary results: a type without a binary loader
    arrives as bytes, its text form for most types)."""
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    return repr(value)


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
