"""The interviewer's first words, written once for every voice (greeter, local, OpenAI)."""

from __future__ import annotations

# When the plan has no questions, the greeter asks this (the voice stacks have their own).
OPEN_QUESTION = "Tell me a little about yourself."


def greeting(role: str | None, first_question: str) -> str:
    """Written, not generated: it plays the moment the call connects."""
    for_role = f" for the {role} role" if role else ""
    return f"Hello, and welcome to your interview{for_role}. {first_question}"
