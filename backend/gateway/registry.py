"""Which API Gateway connections exist, who they are, and which rooms they are in.

API Gateway spreads one client's CONNECT, MESSAGEs and DISCONNECT over every process
of the fleet, so the registry lives in the shared :class:`~backend.core.storage.Store`
(Redis; in memory for a single process) and never in a process's own memory:

- ``apigw:conn:{id}``        the connection's record (JSON), TTL = API Gateway's 2-hour
                             cap counted from CONNECT, so a missed DISCONNECT cleans
                             itself up
- ``apigw:conn:{id}:rooms``  the rooms it joined (set), same deadline
- ``apigw:conn:{id}:greeted`` set once by whichever process posts the greeting
- ``apigw:room:{room}``      the connections in a room (set), refreshed on every join
- ``apigw:rooms``            rooms that have API Gateway members (set), for the fan-out
- ``apigw:conns``            every registered connection (set), for the keep-alive sweep
- ``apigw:cursor:{room}:{id}`` the last event seq of the room posted to the connection;
                             written before the connection joins the room's set, so
                             whoever posts events never posts one the snapshot covered
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from backend.core.auth import Principal, Role
from backend.core.storage import Store

CONNECTION_CAP_S = 2 * 60 * 60
"""API Gateway closes every WebSocket connection two hours after it opened."""

ROOMS_KEY = "apigw:rooms"
CONNECTIONS_KEY = "apigw:conns"


def _conn_key(connection_id: str) -> str:
    return f"apigw:conn:{connection_id}"


def _conn_rooms_key(connection_id: str) -> str:
    return f"apigw:conn:{connection_id}:rooms"


def _room_key(room: str) -> str:
    return f"apigw:room:{room}"


def _nudge_key(room: str) -> str:
    return f"apigw:nudge:{room}"


def _cursor_key(room: str, connection_id: str) -> str:
    return f"apigw:cursor:{room}:{connection_id}"


@dataclass(frozen=True, slots=True)
class GatewayConnection:
    """What CONNECT learned about a client: who it is and what it asked for."""

    connection_id: str
    sub: str
    role: Role
    anonymous: bool
    session_id: str | None = None
    last_seq: int | None = None
    epoch: str | None = None  # of the history ``last_seq`` counts in, when the client sent it
    connected_at: float = field(default_factory=time.time)

    @property
    def principal(self) -> Principal:
        return Principal(sub=self.sub, role=self.role, anonymous=self.anonymous)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> GatewayConnection:
        data = json.loads(raw)
        data["role"] = Role(data["role"])
        return cls(**data)


class ConnectionRegistry:
    def __init__(self, store: Store, *, cap_s: float = CONNECTION_CAP_S) -> None:
        self._store = store
        self._cap_s = cap_s

    def _ttl(self, connection: GatewayConnection) -> float:
        return max(1.0, connection.connected_at + self._cap_s - time.time())

    async def register(self, connection: GatewayConnection) -> None:
        await self._write(connection)
        await self._store.add_members(CONNECTIONS_KEY, connection.connection_id)

    async def _write(self, connection: GatewayConnection) -> None:
        await self._store.put(
            _conn_key(connection.connection_id), connection.to_bytes(), ttl_s=self._ttl(connection)
        )

    async def claim_greeting(self, connection: GatewayConnection) -> bool:
        """True exactly once per connection, and never after its DISCONNECT."""
        cid = connection.connection_id
        key = f"{_conn_key(cid)}:greeted"
        if not await self._store.put_if_absent(key, b"1", ttl_s=self._ttl(connection)):
            return False
        return await self._store.get(_conn_key(cid)) is not None

    async def get(self, connection_id: str) -> GatewayConnection | None:
        raw = await self._store.get(_conn_key(connection_id))
        return None if raw is None else GatewayConnection.from_bytes(raw)

    async def join(self, connection: GatewayConnection, room: str, delivered_seq: int = 0) -> bool:
        """Add the connection to a room whose events up to ``delivered_seq`` it has had.

        False (and no trace) if it disconnected meanwhile.
        """
        cid = connection.connection_id
        ttl = self._ttl(connection)
        await self._store.put(_cursor_key(room, cid), str(delivered_seq).encode(), ttl_s=ttl)
        await self._store.add_members(_conn_rooms_key(cid), room, ttl_s=ttl)
        await self._store.add_members(_room_key(room), cid, ttl_s=self._cap_s)
        await self._store.add_members(ROOMS_KEY, room)
        if await self._store.get(_conn_key(cid)) is None:
            await self.remove(cid)
            return False
        # Whichever process pumps the room catches the newcomer up from its cursor.
        await self._store.put(_nudge_key(room), b"1", ttl_s=60)
        return True

    async def take_nudge(self, room: str) -> bool:
        """True (once) when a connection joined the room since the last call."""
        return await self._store.delete(_nudge_key(room))

    async def records(self, connection_ids: list[str]) -> dict[str, GatewayConnection | None]:
        raws = await self._store.get_many([_conn_key(cid) for cid in connection_ids])
        return {
            cid: None if raw is None else GatewayConnection.from_bytes(raw)
            for cid, raw in zip(connection_ids, raws, strict=True)
        }

    async def forget_expired(self, connection_id: str) -> None:
        """Drop a connection whose record expired (its DISCONNECT never reached us)."""
        await self.remove(connection_id)

    async def connections(self) -> set[str]:
        return await self._store.members(CONNECTIONS_KEY)

    async def leave(self, connection_id: str, room: str) -> None:
        await self._store.remove_members(_room_key(room), connection_id)
        await self._store.remove_members(_conn_rooms_key(connection_id), room)
        await self._store.delete(_cursor_key(room, connection_id))
        await self._prune(room)

    async def cursors(self, room: str, connection_ids: list[str]) -> list[int | None]:
        """Each connection's last posted seq in the room; None for a departed one."""
        raws = await self._store.get_many([_cursor_key(room, cid) for cid in connection_ids])
        return [None if raw is None else int(raw) for raw in raws]

    async def advance(self, room: str, connection_id: str, seq: int) -> None:
        """Record a posted event (one write: only members' cursors are ever read)."""
        await self._store.put(
            _cursor_key(room, connection_id), str(seq).encode(), ttl_s=self._cap_s
        )

    async def rooms_of(self, connection_id: str) -> set[str]:
        return await self._store.members(_conn_rooms_key(connection_id))

    async def members(self, room: str) -> set[str]:
        return await self._store.members(_room_key(room))

    async def rooms(self) -> set[str]:
        """Rooms that may have API Gateway members (the fan-out prunes empty ones)."""
        return await self._store.members(ROOMS_KEY)

    async def remove(self, connection_id: str) -> set[str]:
        """Forget a connection everywhere (DISCONNECT, 410 Gone); returns its rooms."""
        rooms = await self.rooms_of(connection_id)
        await self._store.delete(_conn_key(connection_id))
        for room in rooms:
            await self._store.remove_members(_room_key(room), connection_id)
            await self._store.delete(_cursor_key(room, connection_id))
            await self._prune(room)
        await self._store.delete(_conn_rooms_key(connection_id))
        await self._store.delete(f"{_conn_key(connection_id)}:greeted")
        await self._store.remove_members(CONNECTIONS_KEY, connection_id)
        return rooms

    async def _prune(self, room: str) -> None:
        if not await self._store.members(_room_key(room)):
            await self._store.remove_members(ROOMS_KEY, room)
