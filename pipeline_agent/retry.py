"""Exponential backoff with jitter that honours the server's ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    """Tries in all, the first included."""
    initial_s: float = 0.25
    max_delay_s: float = 10.0
    deadline_s: float = 60.0
    """Give up once this much time has passed since the first try."""

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay_s, self.initial_s * 2.0 ** (attempt - 1))
        jittered = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter
        if retry_after_s is not None:
            # the server knows best when to come back; jitter on top spreads a crowd
            return min(max(retry_after_s, jittered), max(self.max_delay_s, retry_after_s))
        return jittered

    def next_delay(
        self, attempt: int, started: float, now: float, retry_after_s: float | None = None
    ) -> float | None:
        """The wait before the next try, or None when this failed try was the last one
        (out of tries, or the wait would cross ``deadline_s`` since ``started``)."""
        delay = self.delay(attempt, retry_after_s)
        if attempt >= self.attempts or now - started + delay > self.deadline_s:
            return None
        return delay


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by the service)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
