"""A bounded pool: one job per item, at most `parallel` at a time, each result handed back (in
the calling thread) as soon as it finishes.

Threads: the pool of a fleet run where worker processes are not available (no fork: not
Linux; `workers.run_forked` is the same contract with processes) or not worth starting
(--parallel 1, one target), and of discovery, whose jobs only wait on their clusters. Every
job owns its connection and state; nothing here is shared between jobs but the pool.

A failing job never stops the others unless `fail_fast`: then no new job starts (the running
ones finish: an index build is not abandoned half-way) and the rest are reported as skipped.
Ctrl-C asks every running job to stop (`interrupt`, e.g. cancel its statement), waits for them,
reports the rest as skipped and re-raises.
"""
from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_pool(items: Sequence[T], job: Callable[[T], R], *, parallel: int, failed: Callable[[R], bool],
             skipped: Callable[[T, str], R], crashed: Callable[[T, BaseException], R],
             on_result: Callable[[R], None] = lambda r: None, fail_fast: bool = False,
             interrupt: Callable[[T], None] = lambda item: None) -> list[R]:
    """Run `job(item)` for every item; returns the results in the order they finished."""
    results: list[R] = []
    queue: Iterator[T] = iter(items)
    running: dict[Future, T] = {}
    stop_reason = ""

    def finish(r: R) -> None:
        results.append(r)
        on_result(r)

    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="reconciler-target")

    def start_next() -> bool:
        for item in queue:
            running[pool.submit(job, item)] = item
            return True
        return False

    try:
        for _ in range(max(1, parallel)):
            if not start_next():
                break
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                item = running.pop(f)
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001 - a job's bug is that target's failure
                    r = crashed(item, e)
                finish(r)
                if fail_fast and failed(r) and not stop_reason:
                    stop_reason = "not run: another target failed (--fail-fast)"
            while not stop_reason and len(running) < max(1, parallel) and start_next():
                pass
    except KeyboardInterrupt:
        stop_reason = "not run: interrupted"
        for item in list(running.values()):
            interrupt(item)
        for f, item in list(running.items()):
            try:
                r = f.result()
            except BaseException as e:  # noqa: BLE001
                r = crashed(item, e)
            finish(r)
        running.clear()
        for item in queue:
            finish(skipped(item, stop_reason))
        pool.shutdown(wait=True)
        raise
    for item in queue:
        finish(skipped(item, stop_reason or "not run"))
    pool.shutdown(wait=True)
    return results
