"""Which process holds each live call, leased in the shared store (the idea of LiveKit's
router: room to node in Redis, signaling proxied to the node).

Keys (the store adds the deployment prefix):

- ``interview:{id}:owner``: ``{"instance", "url"}`` of the process holding the call,
  with a TTL of ``INTERVIEW_OWNER_TTL_S`` that the holder's heartbeat renews;
- ``interview:owned``: the ids of every call some process holds: the sweeper's list.
  An id whose owner key has expired belongs to a process that died;
- ``interview:{id}:swept``: taken (SET NX) by the one process that marks it failed;
- ``interview:instance:{instance}``: ``{"url", "draining"}`` of each live process, with
  the same TTL; ``interview:instances`` lists them. ``/start`` on a draining process is
  forwarded to one that is not.

Only the store's protocol is used, so the in-memory store works too (one process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from backend.core.storage import Store

OWNED = "interview:owned"
INSTANCES = "interview:instances"
SWEEP_CLAIM_S = 60.0


@dataclass(frozen=True, slots=True)
class Instance:
    instance: str
    url: str
    draining: bool = False


def _owner_key(interview_id: str) -> str:
    return f"interview:{interview_id}:owner"


def _instance_key(instance: str) -> str:
    return f"interview:instance:{instance}"


class Owners:
    def __init__(self, store: Store, me: Instance, *, ttl_s: float) -> None:
        self._store = store
        self.me = me
        self.ttl_s = ttl_s

    # ---- calls -------------------------------------------------------------------------

    async def claim(self, interview_id: str) -> None:
        """This process holds the call: the owner key first, so the sweeper never sees
        the id listed without it."""
        value = json.dumps({"instance": self.me.instance, "url": self.me.url}).encode()
        await self._store.put(_owner_key(interview_id), value, ttl_s=self.ttl_s)
        await self._store.add_members(OWNED, interview_id)

    async def release(self, interview_id: str) -> None:
        """The call is over and its final record saved: nobody owns it any more."""
        await self._store.remove_members(OWNED, interview_id)
        await self._store.delete(_owner_key(interview_id))

    async def owner(self, interview_id: str) -> Instance | None:
        raw = await self._store.get(_owner_key(interview_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return Instance(str(data["instance"]), str(data["url"]))

    async def renew(self, interview_ids: list[str]) -> list[str]:
        """Extend this process's leases; the ids whose lease had already expired (this
        process stalled for longer than the TTL: a sweeper may have failed them)."""
        lost = []
        for interview_id in interview_ids:
            if not await self._store.expire(_owner_key(interview_id), self.ttl_s):
                lost.append(interview_id)
        return lost

    async def orphans(self) -> list[str]:
        """Listed as held, with no live owner: their process died."""
        ids = sorted(await self._store.members(OWNED))
        if not ids:
            return []
        owners = await self._store.get_many([_owner_key(i) for i in ids])
        return [i for i, owner in zip(ids, owners, strict=True) if owner is None]

    async def take_orphan(self, interview_id: str) -> bool:
        """True for exactly one process: the one that marks this orphan failed."""
        return await self._store.put_if_absent(
            f"interview:{interview_id}:swept", b"1", ttl_s=SWEEP_CLAIM_S
        )

    async def forget(self, interview_id: str) -> None:
        await self._store.remove_members(OWNED, interview_id)

    # ---- processes ---------------------------------------------------------------------

    async def announce(self, *, draining: bool) -> None:
        value = json.dumps({"url": self.me.url, "draining": draining}).encode()
        await self._store.put(_instance_key(self.me.instance), value, ttl_s=self.ttl_s)
        await self._store.add_members(INSTANCES, self.me.instance)

    async def withdraw(self) -> None:
        await self._store.remove_members(INSTANCES, self.me.instance)
        await self._store.delete(_instance_key(self.me.instance))

    async def peers(self) -> list[Instance]:
        """Other live processes that take new interviews (dead ones are struck off)."""
        names = sorted((await self._store.members(INSTANCES)) - {self.me.instance})
        if not names:
            return []
        values = await self._store.get_many([_instance_key(n) for n in names])
        live, dead = [], []
        for name, raw in zip(names, values, strict=True):
            if raw is None:
                dead.append(name)
                continue
            data = json.loads(raw)
            if not data.get("draining"):
                live.append(Instance(name, str(data["url"])))
        if dead:
            await self._store.remove_members(INSTANCES, *dead)
        return live
