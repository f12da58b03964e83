"""Fleet runs: one command on every selected database of a targets file, in parallel.

One job: the order of a fleet run. The targets file is read and checked first, the spec once
(by the caller, before any connection); then the clusters whose databases could be selected
are asked for them (`discover`), the selection and the shard are applied, and the command's
job runs on each target in a bounded pool, each with its own connection. Results are handed
back as each target finishes; a failure stops nothing unless `fail_fast`. Nothing
process-wide changes: no environment variable is set, no state is shared between targets
but the read-only spec.

With `--parallel` above 1 on Linux the targets run in forked worker processes
(fleet/workers.py): a target's plan is Python work between catalog reads, and threads of one
interpreter run that work one at a time. The parent opens no connection before the fork
(discovery's are closed by then) and prints every result. Elsewhere, a pool of threads.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import psycopg

from ..core.redact import scrub
from ..errors import ReconcilerError
from ..fleet import (
    Outcome,
    Shard,
    Status,
    Target,
    TargetResult,
    TargetSelection,
    apply_shard,
    discovered_targets,
    load_targets,
    run_pool,
    select_targets,
)
from ..fleet.workers import fork_available, post, run_forked
from ..pg.connection import connect, target_dsn

Job = Callable[[Target, str, "Registry"], Outcome]


@dataclass(frozen=True)
class FleetOptions:
    targets_file: str
    selection: TargetSelection = TargetSelection()
    shard: Shard | None = None
    parallel: int = 4
    fail_fast: bool = False


class Registry:
    """The connections open right now, by target: Ctrl-C cancels their statements. And `say`:
    what a job prints while it runs (apply's event log) reaches the caller's `on_message` as
    whole lines, from a worker process through the parent."""

    def __init__(self, on_message: Callable[[str], None] = lambda text: None) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, list[psycopg.Connection]] = {}
        self._on_message = on_message

    def say(self, text: str) -> None:
        if not post(text):
            with self._lock:   # whole lines: targets run in parallel
                self._on_message(text)

    def connect(self, target: Target, dsn: str, **kw) -> psycopg.Connection:
        try:
            conn = connect(dsn, **kw)
        except ReconcilerError as e:
            raise ReconcilerError(e.message, f"check the connection of target {target.name!r} ({target.where})") \
                from None
        with self._lock:
            self._conns.setdefault(target.name, []).append(conn)
        return conn

    def release(self, target: Target) -> None:
        with self._lock:
            conns = self._conns.pop(target.name, [])
        for c in conns:
            try:
                c.close()
            except psycopg.Error:
                pass

    def cancel(self, target: Target) -> None:
        with self._lock:
            conns = list(self._conns.get(target.name, []))
        for c in conns:
            try:
                c.cancel_safe() if hasattr(c, "cancel_safe") else c.cancel()
            except psycopg.Error:
                pass


def _failure(name: str, e: BaseException, labels=()) -> TargetResult:
    if isinstance(e, ReconcilerError):
        return TargetResult(name, Status.FAILED, 1, e.message, hint=e.hint, labels=labels)
    text = scrub(str(e)).strip()
    first = text.splitlines()[0] if text else ""
    return TargetResult(name, Status.FAILED, 1, f"{type(e).__name__}: {first}" if first else type(e).__name__,
                        labels=labels)


def resolve(opts: FleetOptions, environ: Mapping[str, str] | None = None,
            parallel: int | None = None) -> tuple[list[Target], list[TargetResult]]:
    """The targets this run covers (selected, sharded, in name order) and a failed result for
    each cluster whose databases could not be listed."""
    environ = os.environ if environ is None else environ
    tf = load_targets(opts.targets_file)
    seeds = [s for s in tf.seeds if opts.selection.may_discover(s)]
    found: list[Target] = []
    failures: list[TargetResult] = []

    def ask(seed: Target) -> tuple[Target, list[Target] | BaseException]:
        from ..pg.discover import discover

        try:
            base, kw = seed.connection(environ)
            conn = connect(target_dsn(base, kw), autocommit=True, read_only=True)
            try:
                cols, rows = discover(conn, seed.discover or "", seed.where)
            finally:
                conn.close()
            return seed, discovered_targets(seed, cols, rows)
        except Exception as e:  # noqa: BLE001 - one cluster's failure is that cluster's result
            return seed, e

    if seeds:
        answers = run_pool(seeds, ask, parallel=parallel or opts.parallel, failed=lambda r: False,
                           skipped=lambda s, why: (s, ReconcilerError(why)), crashed=lambda s, e: (s, e))
        for seed, got in sorted(answers, key=lambda a: a[0].name):
            if isinstance(got, BaseException):
                r = _failure(seed.name, got, seed.labels)
                failures.append(TargetResult(r.target, r.status, 1, f"discover: {r.summary}"
                                             if not r.summary.startswith(seed.where) else r.summary,
                                             hint=r.hint, labels=seed.labels))
            else:
                found.extend(got)
    unsure = [s for s in seeds if any(f.target == s.name for f in failures)]
    chosen = select_targets(list(tf.targets) + found, opts.selection, source=opts.targets_file, unsure=unsure)
    if not chosen and opts.selection.labels and not unsure:
        raise ReconcilerError(f"{opts.targets_file}: no target matches {opts.selection.describe()}")
    return apply_shard(chosen, opts.shard), failures


def encode_result(r: TargetResult) -> str:
    """A worker's answer as JSON (no pickle crosses the pipe)."""
    return json.dumps({"target": r.target, "status": r.status.value, "exit_code": r.exit_code, "summary": r.summary,
                       "seconds": r.seconds, "output": r.output, "document": r.document, "hint": r.hint,
                       "labels": [list(kv) for kv in r.labels]}, default=str)


def decode_result(text: str) -> TargetResult:
    d = json.loads(text)
    return TargetResult(d["target"], Status(d["status"]), d["exit_code"], d["summary"], d["seconds"], d["output"],
                        d["document"], d["hint"], tuple((k, v) for k, v in d["labels"]))


def use_processes(parallel: int, n_targets: int) -> bool:
    """Worker processes when more than one target runs at a time and fork is available."""
    return parallel > 1 and n_targets > 1 and fork_available()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) stops a fleet run as Ctrl-C does: running targets are
    interrupted and clean up, the rest are not started."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:   # not the main thread: the caller handles its own signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_fleet(opts: FleetOptions, job: Job, on_result: Callable[[TargetResult], None],
              environ: Mapping[str, str] | None = None,
              prepare: Callable[[list[Target]], None] | None = None,
              on_message: Callable[[str], None] = lambda text: None) -> list[TargetResult]:
    """Run `job(target, dsn, registry)` on every target; `on_result` sees each result as it
    finishes and `on_message` what a job says while it runs (`registry.say`), both in this
    thread of this process. Returns every result, discovery failures included. `prepare`
    sees the whole selection before any job starts and may refuse the run (ReconcilerError):
    what one target's job cannot know, such as two targets writing one file."""
    environ = os.environ if environ is None else environ
    targets, failures = resolve(opts, environ)
    if prepare is not None:
        prepare(targets)
    for f in failures:
        on_result(f)
    registry = Registry(on_message)

    def one(target: Target) -> TargetResult:
        t0 = time.monotonic()
        try:
            base, kw = target.connection(environ)
            out = job(target, target_dsn(base, kw), registry)
            return TargetResult(target.name, out.status, out.exit_code, out.summary, time.monotonic() - t0,
                                out.output, out.document, labels=target.labels)
        except Exception as e:  # noqa: BLE001 - a target's failure is its result, never the run's
            r = _failure(target.name, e, target.labels)
            return TargetResult(r.target, r.status, 1, r.summary, time.monotonic() - t0, hint=r.hint,
                                labels=target.labels)
        finally:
            registry.release(target)

    common = dict(parallel=opts.parallel, fail_fast=opts.fail_fast, failed=lambda r: r.status == Status.FAILED,
                  skipped=lambda t, why: TargetResult(t.name, Status.SKIPPED, 1, why, labels=t.labels),
                  crashed=_crashed, on_result=on_result)
    with _terminate_as_interrupt():
        if use_processes(opts.parallel, len(targets)):
            results = run_forked(targets, one, encode=encode_result, decode=decode_result, on_message=on_message,
                                 **common)
        else:
            results = run_pool(targets, one, interrupt=registry.cancel, **common)
    return failures + results


def _crashed(target: Target, e: BaseException) -> TargetResult:
    if isinstance(e, KeyboardInterrupt):
        return TargetResult(target.name, Status.FAILED, 1, "interrupted", labels=target.labels)
    return _failure(target.name, e, target.labels)
