"""The circuit breaker's state machine (pure, on a fake monotonic clock)."""

from __future__ import annotations

import pytest

from engine.breaker import CircuitBreaker


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_only() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(name="redis", failures=3, cooldown=5, clock=ticks)
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success resets the count: failures must be consecutive
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.is_open
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(5)
    assert breaker.opened_total == 1


def test_half_open_lets_one_probe_through_and_its_result_decides() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(name="redis", failures=1, cooldown=5, clock=ticks)
    breaker.failure()
    ticks.now += 4.9
    assert not breaker.allow()
    ticks.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for its answer
    assert breaker.is_open
    breaker.failure()  # the probe failed: another full cool-down
    assert breaker.state == "open"
    ticks.now += 4
    assert not breaker.allow()
    ticks.now += 1
    assert breaker.allow()
    closed: list[str] = []
    breaker.on_close(lambda: closed.append("closed"))
    breaker.success()
    assert breaker.state == "closed" and not breaker.is_open
    assert closed == ["closed"]
    breaker.success()  # already closed: no second notification
    assert closed == ["closed"]


def test_a_lost_probe_does_not_block_forever() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(name="redis", failures=1, cooldown=2, clock=ticks)
    breaker.failure()
    ticks.now += 2
    assert breaker.allow()  # a probe that never reports (its task was cancelled)
    assert not breaker.allow()
    ticks.now += 2
    assert breaker.allow()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(name="x", failures=0)
