"""Pipeline sessions: records with an owner, and who may follow which session."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from backend.core.auth import Principal
from backend.core.clock import now_iso
from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from backend.core.storage import Store
from backend.hub.events import valid_session_id

SESSION_TTL_S = 7 * 24 * 3600


class _History(Protocol):
    @property
    def last_seq(self) -> int: ...


class HistoryProbe(Protocol):
    def __call__(
        self, session_id: str, after_seq: int | None, limit: int = ...
    ) -> Awaitable[_History]: ...


@dataclass(slots=True)
class SessionRecord:
    session_id: str
    owner: str
    prompt: str
    options: dict[str, Any] = field(default_factory=dict)
    status: str = "created"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Sessions:
    def __init__(
        self,
        store: Store,
        *,
        auth_enabled: bool,
        history: HistoryProbe | None = None,
        ttl_s: float = SESSION_TTL_S,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s  # HUB_SESSION_TTL_S: records expire with their events
        self._auth_enabled = auth_enabled
        self._history = history

    async def create(
        self,
        owner: Principal,
        prompt: str,
        options: dict[str, Any],
        session_id: str | None = None,
        *,
        status: str = "created",
    ) -> SessionRecord:
        record = SessionRecord(
            session_id=valid_session_id(session_id or _new_id()),
            owner=owner.sub,
            prompt=prompt,
            options=options,
            status=status,
        )
        # An id agents already publish to is someone's channel: claiming it would hand
        # its events to whoever asked first (issue 11, item 5).
        if (
            session_id is not None
            and self._history is not None
            and (await self._history(session_id, None)).last_seq > 0
        ):
            raise Conflict("a session with that id has history", code="session_exists")
        stored = await self._store.put_if_absent(
            _key(record.session_id), _dump(record), ttl_s=self._ttl_s
        )
        if not stored:
            raise Conflict("a session with that id exists", code="session_exists")
        await self._store.add_members(_owned_key(owner.sub), record.session_id, ttl_s=self._ttl_s)
        return record

    async def owned(
        self, owner: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        """The owner's sessions, newest first, ``limit`` at a time after ``cursor``.

        The cursor is the last record's ``(created_at, session_id)``: stable while
        sessions are created, since new ones sort before it."""
        ids = sorted(await self._store.members(_owned_key(owner)))
        raws = await self._store.get_many([_key(session_id) for session_id in ids]) if ids else []
        records = [SessionRecord(**json.loads(raw)) for raw in raws if raw is not None]
        expired = [session_id for session_id, raw in zip(ids, raws, strict=True) if raw is None]
        if expired:  # their records outlived by the index: forget them
            await self._store.remove_members(_owned_key(owner), *expired)
        records.sort(key=lambda record: (record.created_at, record.session_id), reverse=True)
        if cursor is not None:
            after = _read_cursor(cursor)
            records = [r for r in records if (r.created_at, r.session_id) < after]
        page = records[:limit]
        more = len(records) > limit
        return page, (_make_cursor(page[-1]) if more and page else None)

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self._store.get(_key(valid_session_id(session_id)))
        return None if raw is None else SessionRecord(**json.loads(raw))

    async def save(self, record: SessionRecord) -> None:
        record.updated_at = now_iso()
        await self._store.put(_key(record.session_id), _dump(record), ttl_s=self._ttl_s)

    async def update(self, session_id: str, **changes: Any) -> None:
        """Change fields of a record (the pipeline's status, outputs and error)."""
        record = await self.get(session_id)
        if record is None:
            return
        for name, value in changes.items():
            setattr(record, name, value)
        await self.save(record)

    async def readable(self, principal: Principal, session_id: str) -> SessionRecord | None:
        """The record if the principal may read it; raises NotFound/Forbidden otherwise.

        Sessions nobody created (ids an agent just publishes to) are open to users only
        when auth is not configured."""
        record = await self.get(session_id)
        if principal.is_privileged or principal.anonymous:
            return record
        if record is None:
            if self._auth_enabled:
                raise NotFound("no such session", code="session_not_found")
            return None
        if record.owner != principal.sub:
            raise Forbidden("this session belongs to someone else", code="forbidden_session")
        return record

    async def check(self, principal: Principal, session_id: str) -> None:
        """SessionAccess for the hub. Services and the anonymous development user may
        follow any session: no record is read for them (a reconnect storm of thousands
        would otherwise queue for the store's pool on a read whose answer is not used)."""
        if principal.is_privileged or principal.anonymous:
            return
        await self.readable(principal, session_id)


def _key(session_id: str) -> str:
    return f"session:{session_id}"


def _owned_key(owner: str) -> str:
    return f"sessions-of:{owner}"


def _make_cursor(record: SessionRecord) -> str:
    raw = json.dumps([record.created_at, record.session_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, session_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            "cursor is the next_cursor a listing gave", code="invalid_cursor"
        ) from exc
    if not isinstance(created_at, str) or not isinstance(session_id, str):
        raise InvalidInput("cursor is the next_cursor a listing gave", code="invalid_cursor")
    return created_at, session_id


def _dump(record: SessionRecord) -> bytes:
    return json.dumps(asdict(record), separators=(",", ":")).encode()


def _new_id() -> str:
    return secrets.token_urlsafe(12).replace("_", "x").replace("-", "y")
