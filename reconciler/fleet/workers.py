"""Worker processes for a fleet run: the same bounded pool as `pool.run_pool`, with each job
in a forked process, so targets use every core instead of sharing one interpreter's GIL.

Linux only (`fork_available`): the parent forks its workers once, after every import and the
spec are loaded and before any database connection is opened (a libpq connection must never
be shared by two processes), so a worker starts with the parsed spec and the job in memory and
nothing is pickled or re-read. Where fork is unavailable the caller uses the thread pool.

The parent decides everything and prints everything: it hands each idle worker the next item
by number, and a worker answers with the job's result, encoded by the caller (`encode` in the
worker, `decode` in the parent: plain JSON, nothing executable crosses the pipe), and with any
lines the job posts while it runs (`post`, e.g. apply's event log). A worker whose job raises
answers with `crashed(item, error)`; a worker that dies (OOM killer, a crash in C) fails its
item with its exit status, and a new worker takes the rest.

Signals, as in a sequential run: a worker ignores SIGINT, so a Ctrl-C at the terminal (which
reaches the whole process group) reaches each job exactly once: the parent sends each busy
worker SIGTERM, which a worker turns into KeyboardInterrupt, the same exception Ctrl-C raises
in a one-database run (psycopg cancels the running statement, apply removes the INVALID
leftover of a cancelled build and prints its summary). The parent waits for those answers,
reports the items not started as skipped, and re-raises. A worker also gets SIGTERM when the
parent dies (PR_SET_PDEATHSIG), so killing the parent leaves no orphan building an index.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_channel = None   # in a worker: its end of the pipe to the parent (see `post`)


def fork_available() -> bool:
    """True where the fleet uses worker processes: Linux, whose fork is the start method that
    shares the loaded spec without pickling (macOS's fork is unsafe with system libraries)."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def post(text: str) -> bool:
    """In a worker: send `text` to the parent, which prints it; False outside a worker."""
    if _channel is None:
        return False
    _channel.send_bytes(b"S" + text.encode("utf-8", "surrogateescape"))
    return True


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:    # the parent died before prctl took effect
        os._exit(1)


def _worker(conn, items: Sequence, job: Callable, crashed: Callable, encode: Callable, parent: int,
            inherited: list) -> None:
    global _channel
    # os._exit at the end: no atexit handler or buffered output inherited from the parent runs
    # twice (the parent's throwaway server, its unflushed stdout)
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _interrupt)
        _die_with_parent(parent)
        for c in inherited:   # the parent's ends of every pipe: ours must see EOF when the parent closes
            c.close()
        _channel = conn
        while True:
            try:
                number = int(conn.recv_bytes())
            except (EOFError, OSError, KeyboardInterrupt):
                break   # the parent is done with us (or gone)
            item = items[number]
            try:
                result = job(item)
            except BaseException as e:  # noqa: BLE001 - a job's error (Ctrl-C too) is its item's result
                result = crashed(item, e)
            try:
                conn.send_bytes(b"R" + encode(result).encode("utf-8", "surrogateescape"))
            except KeyboardInterrupt:
                # a second interrupt while answering: try once more, the parent waits for it
                conn.send_bytes(b"R" + encode(result).encode("utf-8", "surrogateescape"))
    except (OSError, KeyboardInterrupt):
        code = 1
    except BaseException:  # noqa: BLE001 - never a traceback from a worker
        code = 1
    finally:
        os._exit(code)


class _Worker:
    """The parent's view of one worker: its process, our end of its pipe, the item it runs."""

    def __init__(self, ctx, items, job, crashed, encode, others: list[_Worker]) -> None:
        self.conn, theirs = ctx.Pipe(duplex=True)
        inherited = [self.conn] + [w.conn for w in others]
        self.process = ctx.Process(target=_worker, args=(theirs, items, job, crashed, encode, os.getpid(),
                                                         inherited), daemon=True)
        self.process.start()
        theirs.close()
        self.number: int | None = None      # the item it runs now
        self.eof = False                    # its end of the pipe is closed: it exited

    def start(self, number: int) -> None:
        self.number = number
        self.conn.send_bytes(str(number).encode())

    def interrupt(self) -> None:
        if self.number is not None and self.process.is_alive():
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def run_forked(items: Sequence[T], job: Callable[[T], R], *, parallel: int, failed: Callable[[R], bool],
               skipped: Callable[[T, str], R], crashed: Callable[[T, BaseException], R],
               encode: Callable[[R], str], decode: Callable[[str], R],
               on_result: Callable[[R], None] = lambda r: None, on_message: Callable[[str], None] = lambda t: None,
               fail_fast: bool = False) -> list[R]:
    """`pool.run_pool` with worker processes; returns the results in the order they finished."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    results: list[R] = []
    todo = list(range(len(items)))
    todo.reverse()                           # pop() takes them in order
    workers: list[_Worker] = []
    stop_reason = ""
    for stream in (sys.stdout, sys.stderr):  # nothing buffered is copied into a worker
        try:
            stream.flush()
        except (OSError, ValueError):
            pass

    def finish(r: R) -> None:
        results.append(r)
        on_result(r)

    def dispatch() -> None:
        for w in workers:
            if stop_reason or not todo:
                return
            if w.number is None and not w.eof:
                w.start(todo.pop())

    def busy() -> bool:
        return any(w.number is not None for w in workers)

    def receive() -> None:
        nonlocal stop_reason
        ready = set(wait([w.conn for w in workers if not w.eof] + [w.process.sentinel for w in workers]))
        for w in [w for w in workers if w.conn in ready]:
            try:
                data = w.conn.recv_bytes()
            except (EOFError, OSError):
                w.eof = True    # it exited: its sentinel says how, below
                continue
            kind, text = data[:1], data[1:].decode("utf-8", "surrogateescape")
            if kind == b"S":
                on_message(text)
                continue
            number, w.number = w.number, None
            try:
                r = decode(text)
            except ValueError as e:   # a message cut short (a worker killed while writing)
                r = crashed(items[number], e)
            finish(r)
            if fail_fast and failed(r) and not stop_reason:
                stop_reason = "not run: another target failed (--fail-fast)"
        for w in [w for w in workers if w.process.sentinel in ready]:
            if not w.eof and w.conn.poll():
                continue        # answers still in the pipe: read them first
            w.process.join()
            if w.number is not None:
                finish(crashed(items[w.number], RuntimeError(
                    f"the worker process ended with exit status {w.process.exitcode}")))
            w.conn.close()
            workers.remove(w)
            if todo and not stop_reason:
                workers.append(_Worker(ctx, items, job, crashed, encode, workers))

    try:
        for _ in range(min(max(1, parallel), len(items))):
            workers.append(_Worker(ctx, items, job, crashed, encode, workers))
        dispatch()
        while busy():
            receive()
            dispatch()
    except KeyboardInterrupt:
        stop_reason = "not run: interrupted"
        for w in workers:
            w.interrupt()
        while busy():
            try:
                receive()
            except KeyboardInterrupt:
                for w in workers:   # again: as a second Ctrl-C in a sequential run
                    w.interrupt()
        _close(workers)
        for number in reversed(todo):
            finish(skipped(items[number], stop_reason))
        raise
    finally:
        _close(workers)
    for number in reversed(todo):
        finish(skipped(items[number], stop_reason or "not run"))
    return results


def _close(workers: list[_Worker]) -> None:
    """Idle workers see the pipe close and exit; wait for every one (no orphan, no zombie)."""
    for w in workers:
        w.conn.close()
    for w in workers:
        w.process.join(30)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
    workers.clear()
