"""API keys for machine clients (CONTRACT §5): created once, stored only as a hash.

A key is ``pbk_`` plus 32 random bytes (base64url). Being that high in entropy, a plain
SHA-256 of it is a safe thing to keep (no slow password hash needed, so checking one
costs a dictionary lookup or one store read). Layout in the shared store:

- ``apikey:{id}``        the record (JSON): id, name, role, hash, created_at, revoked_at
- ``apikey:h:{sha256}``  the id of the live key with that hash (deleted on revocation)
- ``apikey:{id}:used``   the last time it was used (ISO 8601), written at most once a
                         minute per process
- ``apikeys``            the ids of every key (set), for ``list``

Each process caches a verdict for :data:`CACHE_TTL_S`, so a revocation reaches every
process within that time without a store read per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from backend.core.auth import Principal, Role
from backend.core.clock import now_iso
from backend.core.errors import InvalidInput, NotFound, Unauthorized
from backend.core.storage import Store, StoreUnavailable

log = structlog.get_logger(__name__)

KEY_PREFIX = "pbk_"
CACHE_TTL_S = 2.0  # revocation reaches every process within this (the contract says 5 s)
LAST_USED_EVERY_S = 60.0
MAX_CACHED = 10_000
NAME = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
INDEX_KEY = "apikeys"


def _record_key(key_id: str) -> str:
    return f"apikey:{key_id}"


def _hash_key(digest: str) -> str:
    return f"apikey:h:{digest}"


def _used_key(key_id: str) -> str:
    return f"apikey:{key_id}:used"


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(slots=True)
class ApiKeyRecord:
    id: str
    name: str
    role: Role
    hash: str
    created_at: str
    revoked_at: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ApiKeyRecord:
        data: dict[str, Any] = json.loads(raw)
        data["role"] = Role(data["role"])
        return cls(**data)

    @property
    def principal(self) -> Principal:
        """A key acts as its name, with its role (an agent named ``renderer``, say)."""
        return Principal(sub=self.name, role=self.role)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What ``list`` shows: never the key, never its hash."""

    id: str
    name: str
    role: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


@dataclass(slots=True)
class _Cached:
    expires: float
    record: ApiKeyRecord | None


class ApiKeys:
    def __init__(self, store: Store, *, cache_ttl_s: float = CACHE_TTL_S) -> None:
        self._store = store
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, _Cached] = {}
        self._used_written: dict[str, float] = {}

    async def create(self, name: str, role: Role | str) -> tuple[str, ApiKeyRecord]:
        """A new key and its record; the key itself is returned here and nowhere else."""
        if not NAME.fullmatch(name):
            raise InvalidInput("a key's name is 1-64 of [A-Za-z0-9._:@-]", code="invalid_name")
        try:
            role = Role(role)
        except ValueError:
            raise InvalidInput("role is agent, service or user", code="invalid_role") from None
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=secrets.token_hex(6),
            name=name,
            role=role,
            hash=digest_of(key),
            created_at=now_iso(),
        )
        await self._store.put(_record_key(record.id), record.to_bytes())
        await self._store.put(_hash_key(record.hash), record.id.encode())
        await self._store.add_members(INDEX_KEY, record.id)
        return key, record

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        raw = await self._store.get(_record_key(key_id))
        if raw is None:
            raise NotFound(f"no API key with id {key_id}", code="api_key_not_found")
        record = ApiKeyRecord.from_bytes(raw)
        if record.revoked_at is None:
            record.revoked_at = now_iso()
            await self._store.put(_record_key(key_id), record.to_bytes())
        await self._store.delete(_hash_key(record.hash))
        self._cache.pop(record.hash, None)
        return record

    async def list(self) -> list[ApiKeyInfo]:
        ids = sorted(await self._store.members(INDEX_KEY))
        records = await self._store.get_many([_record_key(i) for i in ids])
        used = await self._store.get_many([_used_key(i) for i in ids])
        found = [
            (ApiKeyRecord.from_bytes(raw), last)
            for raw, last in zip(records, used, strict=True)
            if raw is not None
        ]
        found.sort(key=lambda pair: pair[0].created_at)
        return [
            ApiKeyInfo(
                id=record.id,
                name=record.name,
                role=record.role.value,
                created_at=record.created_at,
                last_used_at=last.decode() if last else None,
                revoked_at=record.revoked_at,
            )
            for record, last in found
        ]

    async def verify(self, key: str) -> Principal:
        """The key's principal, or Unauthorized; a revoked key fails within the cache TTL."""
        if not key.startswith(KEY_PREFIX) or len(key) > 128:
            raise Unauthorized("the API key is malformed", code="invalid_api_key")
        digest = digest_of(key)
        record = await self._lookup(digest)
        if record is None or record.revoked_at is not None:
            raise Unauthorized("the API key is unknown or revoked", code="invalid_api_key")
        await self._touch(record.id)
        return record.principal

    async def _lookup(self, digest: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached.expires > now:
            return cached.record
        record = None
        key_id = await self._store.get(_hash_key(digest))
        if key_id is not None:
            raw = await self._store.get(_record_key(key_id.decode()))
            record = ApiKeyRecord.from_bytes(raw) if raw is not None else None
        if len(self._cache) >= MAX_CACHED:  # unknown keys must not grow it without bound
            self._cache.clear()
        self._cache[digest] = _Cached(now + self._cache_ttl_s, record)
        return record

    async def _touch(self, key_id: str) -> None:
        """Record the use, at most once a minute per process (one store write)."""
        now = time.monotonic()
        last = self._used_written.get(key_id)
        if last is not None and now - last < LAST_USED_EVERY_S:
            return
        self._used_written[key_id] = now
        try:
            await self._store.put(_used_key(key_id), now_iso().encode())
        except StoreUnavailable:  # best effort: a valid key still works from the cache
            log.warning("api_key_last_used_not_saved", key_id=key_id)
