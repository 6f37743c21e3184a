"""A circuit breaker: stop calling a dependency that keeps failing, and probe it again after a cool-down.

Pure state machine over an injected monotonic clock (no I/O). ``closed``: calls go through and
consecutive failures are counted; after ``failures`` of them the breaker *opens* for ``cooldown``
seconds, during which :meth:`CircuitBreaker.allow` refuses at once (no network wait). Once the
cool-down has passed one caller is let through as the *half-open* probe: its success closes the
breaker, its failure opens it for another cool-down. Callbacks registered with
:meth:`CircuitBreaker.on_close` run when the breaker closes again (a catch-up can start).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a cool-down and a single half-open probe."""

    def __init__(
        self,
        *,
        name: str,
        failures: int = 3,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown < 0:
            raise ValueError("failures must be >= 1 and cooldown >= 0")
        self.name = name
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._state: State = "closed"
        self._count = 0
        self._opened_at = 0.0
        self._probing = False
        self._probe_at = 0.0
        self._listeners: list[Callable[[], None]] = []
        self.opened_total = 0
        """How many times the breaker opened (for metrics and tests)."""

    @property
    def state(self) -> State:
        """``closed``, ``open`` (cooling down) or ``half_open`` (cool-down over: the next call probes)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return self._state

    def _probe_pending(self) -> bool:
        """A probe is out and has not answered (one lost for a whole cool-down no longer counts)."""
        return self._probing and self._clock() - self._probe_at < max(self.cooldown, 0.001)

    @property
    def is_open(self) -> bool:
        """Whether calls are refused right now (open and cooling down, or a probe is in flight)."""
        state = self.state
        return state == "open" or (state == "half_open" and self._probe_pending())

    def retry_after(self) -> float:
        """Seconds until the next probe is allowed (0 when closed)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only the first caller (the probe) may."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probe_pending():
            return False
        self._probing = True
        self._probe_at = self._clock()
        return True

    def success(self) -> None:
        """Record a successful call: closes the breaker (running the close callbacks if it was open)."""
        was_open = self._state == "open"
        self._state = "closed"
        self._count = 0
        self._probing = False
        if was_open:
            log.warning("%s is answering again: circuit closed", self.name)
            for listener in list(self._listeners):
                listener()

    def failure(self) -> None:
        """Record a failed call: opens the breaker after ``failures`` in a row, or at once after a failed probe."""
        self._probing = False
        if self._state == "open":
            self._opened_at = self._clock()  # the probe failed: cool down again
            return
        self._count += 1
        if self._count >= self.failures:
            self._state = "open"
            self._opened_at = self._clock()
            self.opened_total += 1
            log.warning("%s failed %s times in a row: circuit open for %ss", self.name, self._count, self.cooldown)

    def on_close(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` each time the breaker closes after having been open."""
        self._listeners.append(listener)
