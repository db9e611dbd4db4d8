"""Readiness checks: named async probes that capabilities register at start-up.

Liveness (``/health``) never runs these; readiness (``/health/ready``) runs them all
concurrently, each bounded by a timeout, and reports state and latency per check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "status": "up" if self.ok else "down",
            "latency_ms": round(self.latency_ms, 2),
        }
        if self.error:
            body["error"] = self.error
        return body


class HealthChecks:
    def __init__(self, timeout_s: float = 2.0) -> None:
        self._probes: dict[str, Probe] = {}
        self._timeout_s = timeout_s

    def register(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    async def run(self) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._one(n, p) for n, p in self._probes.items())))

    async def _one(self, name: str, probe: Probe) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                await probe()
        except TimeoutError:
            return CheckResult(name, False, _ms(started), f"timed out after {self._timeout_s}s")
        except Exception as exc:  # a failing probe is data, not a crash
            return CheckResult(name, False, _ms(started), str(exc) or type(exc).__name__)
        return CheckResult(name, True, _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
