"""Carries out `reconciler maintain`'s statements with the executor's safety, one at a time.

One job: run what `health.maintain` decided. It reuses the executor's own machinery (same
package): the transactions a REINDEX CONCURRENTLY waits for are reported as it waits for them
and bounded by the build timeout (the executor's watcher), each try sets its own lock_timeout and
statement_timeout, lock timeouts are retried
with jittered backoff, REINDEX reports pg_stat_progress_create_index and VACUUM / ANALYZE
their own progress views. A REINDEX that fails, times out or is interrupted leaves an INVALID
copy (`<name>_ccnew`): it is removed by the executor's own cleanup rule (`_cleanup_of`), which
drops only what this run created: an INVALID index on the statement's table whose OID is new
since the statement started, whose name is one PostgreSQL gives that REINDEX's copy
(`reconcile.naming.reindex_leftover_names`), and that no other backend is building. Someone
else's `_ccnew` is never touched. This module never decides what to run.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from ..core.ident import qualified
from ..core.kinds import OpKind
from ..core.plan import Operation
from ..errors import ApplyError
from ..reconcile.naming import reindex_leftover_names
from . import events as ev
from .executor import Executor

# pg_stat_progress_* views of the statements that are not index builds
_PROGRESS = {
    OpKind.VACUUM: ("SELECT phase, heap_blks_scanned, heap_blks_total FROM pg_stat_progress_vacuum WHERE pid = %s"),
    OpKind.ANALYZE: ("SELECT phase, sample_blks_scanned, sample_blks_total FROM pg_stat_progress_analyze "
                     "WHERE pid = %s"),
}


@dataclass
class Maintainer:
    """Runs maintenance statements on the executor's connection."""

    ex: Executor

    def run(self, op: Operation) -> None:
        """One statement (REINDEX INDEX CONCURRENTLY, VACUUM, ANALYZE, DROP INDEX of a leftover).
        Raises ApplyError with the statement and why when it cannot be carried out."""
        ex = self.ex
        cleanup = None
        if op.kind is OpKind.REINDEX and op.table and op.target:
            # snapshot of the table's indexes now, before the statement: see the module docstring
            cleanup = ex._cleanup_of(op, set(reindex_leftover_names(op.target)))
        try:
            # a concurrent REINDEX's waits for other transactions are reported as they happen and
            # bounded by the build timeout by the executor's watcher (`Executor._run_with_progress`)
            ex._set_timeouts(op)
            run = (lambda: self._run_with_table_progress(op)) if op.kind in _PROGRESS else \
                (lambda: ex._run_with_progress(op))
            ex._with_retries(op, run, cleanup)
        except KeyboardInterrupt:
            self._after_interrupt(op, cleanup)
            raise

    def size(self, schema: str, name: str) -> int:
        return self.ex._size(schema, name)

    def still_abandoned(self, oid: int) -> str | None:
        """The qualified name of index `oid` if it is still INVALID and nobody is building it
        (checked right before its DROP: the snapshot the plan came from is seconds old)."""
        row = self.ex.conn.execute(
            "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indexrelid = %s "
            "AND NOT (i.indisvalid AND i.indisready) "
            "AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = i.indexrelid AND l.pid <> pg_backend_pid() "
            "AND l.mode = 'ShareUpdateExclusiveLock')", (oid,)).fetchone()
        return qualified(row[0], row[1]) if row else None

    # -- an interrupt ------------------------------------------------------------------------------

    def _after_interrupt(self, op: Operation, cleanup) -> None:
        try:
            if self.ex.conn.info.transaction_status != 0:   # the cancel left us mid-statement
                self.ex.conn.cancel_safe() if hasattr(self.ex.conn, "cancel_safe") else self.ex.conn.cancel()
            if cleanup is not None:
                cleanup()
        except (psycopg.Error, KeyboardInterrupt):
            self.ex.emit(ev.Info("interrupted: could not clean up; the next `reconciler maintain` (or health) shows "
                                 "what remains and drops it"))

    # -- progress of VACUUM and ANALYZE ---------------------------------------------------------------

    def _run_with_table_progress(self, op: Operation):
        ex = self.ex
        if not ex.monitor_dsn:
            return ex.run_sql(op.sql)
        stop = threading.Event()
        t = threading.Thread(target=self._poll, args=(ex.backend_pid(), op, stop), daemon=True)
        t.start()
        try:
            return ex.run_sql(op.sql)
        finally:
            stop.set()
            t.join(timeout=5)

    def _poll(self, pid: int, op: Operation, stop: threading.Event) -> None:
        try:
            with psycopg.connect(self.ex.monitor_dsn, autocommit=True, application_name="reconciler-monitor") as mon:
                started = time.monotonic()
                while not stop.wait(self.ex.progress_interval):
                    row = mon.execute(_PROGRESS[op.kind], (pid,)).fetchone()
                    if row is None:
                        continue
                    phase, done, total = row
                    frac = done / total if total else None
                    elapsed = time.monotonic() - started
                    eta = round(elapsed * (1 - frac) / frac, 1) if frac and frac > 0.01 else None
                    self.ex.emit(ev.Progress(op.table, phase, done, total, None, None, None, None, None,
                                             round(frac, 4) if frac is not None else None, eta, round(elapsed, 1)))
        except psycopg.Error:
            return


__all__ = ["ApplyError", "Maintainer"]
