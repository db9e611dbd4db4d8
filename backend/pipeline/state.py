"""A run's stored step outputs: what a resumed or retried run does not compute again.

One JSON document per session in the shared store (Redis with REDIS_URL), written after
each completed step. Files named in an output live under the run's work directory,
relative to it, so any worker sharing that directory can pick the run up.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.core.storage import Store

STATE_TTL_S = 7 * 24 * 3600


@dataclass(slots=True)
class RunState:
    session_id: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    publish_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    attempts: int = 0

    def files_present(self, agent: str, run_dir: Path) -> bool:
        files = self.outputs.get(agent, {}).get("files", [])
        return all((run_dir / name).is_file() for name in files)


class RunStates:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def load(self, session_id: str) -> RunState:
        raw = await self._store.get(_key(session_id))
        if raw is None:
            return RunState(session_id)
        return RunState(**json.loads(raw))

    async def save(self, state: RunState) -> None:
        text = json.dumps(asdict(state), separators=(",", ":")).encode()
        await self._store.put(_key(state.session_id), text, ttl_s=STATE_TTL_S)

    async def request_cancel(self, session_id: str) -> None:
        await self._store.put(_cancel_key(session_id), b"1", ttl_s=STATE_TTL_S)

    async def clear_cancel(self, session_id: str) -> None:
        await self._store.delete(_cancel_key(session_id))

    async def cancel_requested(self, session_id: str) -> bool:
        return await self._store.get(_cancel_key(session_id)) is not None


def _key(session_id: str) -> str:
    return f"pipeline:state:{session_id}"


def _cancel_key(session_id: str) -> str:
    return f"pipeline:cancel:{session_id}"
