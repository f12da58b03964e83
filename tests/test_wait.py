"""run.wait: the one waiting helper (backoff with jitter, tries, deadline, reports), on a fake
clock: no database, no sleeping."""
from __future__ import annotations

import pytest

from reconciler.run.wait import POLL_EVERY_SECOND, Backoff, Clock, GaveUp, NotYet, wait_until


class FakeClock:
    """Time that moves only when slept; `rand` is what random() returns."""

    def __init__(self, rand: float = 0.5):
        self.now, self.rand, self.sleeps = 100.0, rand, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    @property
    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, sleep=self.sleep, random=lambda: self.rand)


def ready_on(n_ready: int, value="done", state="busy"):
    calls = []

    def attempt(n: int):
        calls.append(n)
        return value if n == n_ready else NotYet(state)

    return attempt, calls


def test_returns_the_first_ready_value_without_sleeping():
    fake = FakeClock()
    attempt, calls = ready_on(1)
    assert wait_until(attempt, tries=3, clock=fake.clock) == "done"
    assert calls == [1] and fake.sleeps == []


def test_exponential_backoff_between_tries():
    fake = FakeClock()
    attempt, calls = ready_on(4)
    assert wait_until(attempt, backoff=Backoff(base_s=0.2), tries=10, clock=fake.clock) == "done"
    assert calls == [1, 2, 3, 4]
    assert fake.sleeps == [0.2, 0.4, 0.8]   # jitter factor 1.0 at random() = 0.5


@pytest.mark.parametrize("rand, factor", [(0.0, 0.5), (0.5, 1.0), (0.999999, 1.5)])
def test_jitter_spreads_each_delay_between_half_and_one_and_a_half(rand, factor):
    fake = FakeClock(rand)
    attempt, _ = ready_on(2)
    wait_until(attempt, backoff=Backoff(base_s=1.0), tries=2, clock=fake.clock)
    assert fake.sleeps == [pytest.approx(factor, abs=1e-5)]


def test_delay_is_capped():
    b = Backoff(base_s=1.0, factor=10.0, cap_s=5.0, jitter=0.0)
    assert [b.delay(n) for n in (1, 2, 3, 9)] == [1.0, 5.0, 5.0, 5.0]


def test_gives_up_after_the_number_of_tries_with_the_last_state():
    fake = FakeClock()
    states = iter(["a", "b", "c"])
    with pytest.raises(GaveUp) as err:
        wait_until(lambda n: NotYet(next(states)), tries=3, clock=fake.clock)
    assert (err.value.state, err.value.tries) == ("c", 3)
    assert len(fake.sleeps) == 2   # no sleep after the last try


def test_deadline_last_try_happens_at_the_deadline_not_after():
    fake = FakeClock()
    tried_at = []

    def attempt(n: int):
        tried_at.append(fake.now - 100.0)
        return NotYet("busy")

    with pytest.raises(GaveUp) as err:
        wait_until(attempt, backoff=POLL_EVERY_SECOND, timeout_s=2.5, clock=fake.clock)
    assert tried_at == [0.0, 1.0, 2.0, 2.5]
    assert err.value.elapsed_s == pytest.approx(2.5)


def test_zero_timeout_means_one_try():
    fake = FakeClock()
    attempt, calls = ready_on(99)
    with pytest.raises(GaveUp):
        wait_until(attempt, timeout_s=0, clock=fake.clock)
    assert calls == [1] and fake.sleeps == []


def test_report_before_each_sleep_with_what_to_say():
    fake = FakeClock()
    seen = []
    attempt, _ = ready_on(3, state="pid 42 holds it")
    wait_until(attempt, backoff=Backoff(base_s=0.5), tries=5, clock=fake.clock,
               on_wait=lambda w: seen.append((w.state, w.tries, w.first, round(w.elapsed_s, 3), w.delay_s)))
    assert seen == [("pid 42 holds it", 1, True, 0.0, 0.5), ("pid 42 holds it", 2, False, 0.5, 1.0)]


def test_an_exception_from_a_try_ends_the_wait():
    fake = FakeClock()

    def attempt(n: int):
        if n == 2:
            raise ValueError("not retryable")
        return NotYet("busy")

    with pytest.raises(ValueError):
        wait_until(attempt, tries=5, clock=fake.clock)
    assert len(fake.sleeps) == 1


def test_none_is_a_value_not_a_wait():
    fake = FakeClock()
    assert wait_until(lambda n: None, tries=3, clock=fake.clock) is None
    assert fake.sleeps == []
