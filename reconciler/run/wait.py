"""One way to wait: try something again until it is ready, with jittered exponential backoff,
bounded by a number of tries or a deadline, and a report each time it waits.

Every wait of apply goes through `wait_until`: a statement retried after a lock timeout, old
transactions a build would wait for, the advisory lock of another apply, planning reads behind
a lock, builds another session is running. Clock, sleep and randomness are injected (`Clock`),
so this is tested without a database and without sleeping. Pure apart from the default clock.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True)
class Clock:
    """Where time comes from: the real one by default, a fake one in tests."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random


SYSTEM = Clock()


@dataclass(frozen=True)
class Backoff:
    """Delay before try n+1: ``min(cap, base * factor**(n-1))`` scaled by a uniform factor in
    ``[1 - jitter, 1 + jitter)``, so that many sessions retrying the same lock spread out
    (pgroll `pkg/db/db.go`).

    >>> Backoff(base_s=0.2).delay(1, lambda: 0.5), Backoff(base_s=0.2).delay(3, lambda: 0.5)
    (0.2, 0.8)
    >>> Backoff(base_s=1, factor=1, jitter=0).delay(50, lambda: 0.9)
    1.0
    """

    base_s: float = 0.2
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.5

    def delay(self, tries: int, rand: Callable[[], float] = random.random) -> float:
        raw = min(self.cap_s, self.base_s * self.factor ** max(tries - 1, 0))
        return raw * (1 - self.jitter + 2 * self.jitter * rand())


POLL_EVERY_SECOND = Backoff(base_s=1.0, factor=1.0, cap_s=1.0, jitter=0.0)


@dataclass(frozen=True)
class NotYet(Generic[S]):
    """What a try returns when it is not done: `state` says why (the error, the sessions)."""

    state: S


@dataclass(frozen=True)
class WaitStatus(Generic[S]):
    """Handed to `on_wait` before each sleep: what to report while waiting."""

    state: S            # the last try's NotYet.state
    tries: int          # tries made so far (the next one is tries + 1)
    elapsed_s: float    # since the first try started
    delay_s: float      # the sleep about to happen

    @property
    def first(self) -> bool:
        return self.tries == 1


class GaveUp(Exception, Generic[S]):
    """Out of tries or past the deadline; `state` is the last try's."""

    def __init__(self, state: S, tries: int, elapsed_s: float):
        super().__init__(f"gave up after {tries} tries in {elapsed_s:.1f}s")
        self.state, self.tries, self.elapsed_s = state, tries, elapsed_s


def wait_until(attempt: Callable[[int], "T | NotYet[S]"], *, backoff: Backoff = Backoff(),
               tries: int | None = None, timeout_s: float | None = None,
               on_wait: Callable[[WaitStatus[S]], None] | None = None, clock: Clock = SYSTEM) -> T:
    """Call ``attempt(n)`` (n = 1, 2, ...) until it returns something other than `NotYet`.

    Between tries: ``on_wait(WaitStatus)``, then a sleep of the backoff's delay, never past the
    deadline (so the last try happens at the deadline, not after it). Gives up, raising
    `GaveUp` with the last state, after `tries` tries or once `timeout_s` has passed (a
    timeout of 0 means one try). An exception from `attempt` or `on_wait` ends the wait.

    >>> fake = Clock(monotonic=lambda: 0.0, sleep=lambda s: None, random=lambda: 0.5)
    >>> wait_until(lambda n: n if n == 3 else NotYet("busy"), tries=5, clock=fake)
    3
    """
    started = clock.monotonic()
    deadline = None if timeout_s is None else started + max(timeout_s, 0.0)
    n = 0
    while True:
        n += 1
        result = attempt(n)
        if not isinstance(result, NotYet):
            return result
        now = clock.monotonic()
        if (tries is not None and n >= tries) or (deadline is not None and now >= deadline):
            raise GaveUp(result.state, n, now - started)
        delay = backoff.delay(n, clock.random)
        if deadline is not None:
            delay = min(delay, deadline - now)
        if on_wait is not None:
            on_wait(WaitStatus(result.state, n, now - started, delay))
        clock.sleep(delay)
