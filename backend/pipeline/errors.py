"""How a step fails: transient failures are retried with backoff, permanent ones end the run."""

from __future__ import annotations

from backend.core.errors import DomainError


class StepFailed(DomainError):
    """A step cannot finish; ``message`` is what the session's ``error`` says."""

    code = "step_failed"
    transient = False


class TransientStepError(StepFailed):
    """Worth another try: a provider's 429/5xx, a timeout, a process killed by a signal."""

    code = "step_transient"
    transient = True


class StepCancelled(Exception):
    """The owner cancelled the run; raised inside worker threads between units of work."""
