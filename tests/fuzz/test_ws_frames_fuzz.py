"""A hypothesis-driven fuzzer of WebSocket frames (CONTRACT §2.1), on both buses.

One connection sends generated frames: every action and alias, every field of the
action table with values of every JSON type (huge and negative numbers, NaN, deep
nesting, wrong types, unknown keys), raw junk and binary frames. After each batch it
must still answer a ping. Meanwhile a healthy client in the same room must receive
every event published, once and in order, and every frame it gets must be JSON a
browser can parse.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import TEST_REDIS_URL
from tests.support.uvicorn_process import ServiceProcess

ROOM = "fuzz-room"
EXAMPLES = 250


def _strict(text: str | bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON a browser parses")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module", params=["memory", "redis"])
def service(request: pytest.FixtureRequest) -> Iterator[ServiceProcess]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    env = {
        "LOG_LEVEL": "warning",
        "INTERVIEW_CONVERSATION": "greeter",
        # The fuzzer sends frames as fast as it can: the frame limit (tested on its own in
        # tests/backend/test_rate_limits.py) would answer its probes rate_limited.
        "RATE_LIMIT_WS_FRAME": "100000/second",
    }
    if request.param == "redis":
        env |= {"REDIS_URL": TEST_REDIS_URL, "REDIS_PREFIX": prefix}
    process = ServiceProcess(env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        if request.param == "redis":
            client = redis.Redis.from_url(TEST_REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                client.delete(*keys)
            client.close()


class Listener:
    """The healthy client: reads everything on a thread of its own."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.unreadable: list[str] = []
        self.closed: ConnectionClosed | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except ConnectionClosed as exc:
                self.closed = exc
                return
            try:
                self.messages.append(_strict(raw))
            except ValueError:
                self.unreadable.append(str(raw)[:200])

    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.messages if m.get("type") == "agent_status"]

    def stop(self) -> None:
        self.ws.close()
        self._thread.join(timeout=10)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
ACTIONS = st.sampled_from(
    ["ping", "joinRoom", "subscribe", "leaveRoom", "unsubscribe", "sendMessage", "broadcast",
     "resume", "dance", "", "PING", "join_room"]
)  # fmt: skip
ROOMS = st.sampled_from([ROOM, "other-room", "a" * 128, "a" * 129, "", "../x", "r m"]) | st.text(
    max_size=20
)
SEQS = st.sampled_from([0, 1, 5, 2**63 - 1, 2**63, 2**64, 2**64 - 1, -1, 10**30]) | st.integers()
JUNK = st.sampled_from(
    [
        "{", "[]", "null", '"x"', "1e999", '{"action": "ping"', '{"action": null}',
        '{"action": "broadcast", "message": "\\ud800"}', '{"action": "ping", "request_id": NaN}',
        '{"action": "broadcast", "room": "fuzz-room", "message": ' + "[" * 40 + "]" * 40 + "}",
        '{"action": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}",
        '{"action": "resume", "room": "fuzz-room", "last_seq": 18446744073709551616}',
    ]
)  # fmt: skip


@st.composite
def frames(draw: st.DrawFn, target_ids: list[str]) -> str | bytes:
    kind = draw(st.sampled_from(["fields", "fields", "fields", "junk", "text", "binary"]))
    if kind == "junk":
        return draw(JUNK)
    if kind == "text":
        return draw(st.text(max_size=60))
    if kind == "binary":
        return draw(st.binary(max_size=60))
    body: dict[str, Any] = {}
    body["action"] = draw(ACTIONS | JSON_VALUES) if draw(st.booleans()) else draw(ACTIONS)
    fields = {
        "request_id": st.integers() | st.text(max_size=200) | JSON_VALUES,
        "room": ROOMS | JSON_VALUES,
        "last_seq": SEQS | JSON_VALUES,
        "epoch": st.text(max_size=80) | JSON_VALUES,
        "targetId": st.sampled_from(target_ids) | st.text(max_size=140) | JSON_VALUES,
        "message": JSON_VALUES,
        draw(st.text(max_size=8)): JSON_VALUES,
    }
    for name, values in fields.items():
        if draw(st.booleans()):
            body[name] = draw(values)
    text = json.dumps(body, allow_nan=True)
    return text.encode() if draw(st.integers(0, 9)) == 0 else text


def _probe(ws: ClientConnection, n: int, sent: list[str | bytes]) -> None:
    """The fuzzed connection answers a ping after what it was sent; its replies parse."""
    ws.send(json.dumps({"action": "ping", "request_id": f"probe-{n}"}))
    while True:
        try:
            raw = ws.recv(timeout=10)
        except (ConnectionClosed, TimeoutError) as exc:
            raise AssertionError(f"the fuzzed connection died ({exc!r}) after {sent!r}") from exc
        reply = _strict(raw)
        assert isinstance(reply.get("type"), str), reply
        if reply["type"] == "error":
            assert isinstance(reply["code"], str)
            assert isinstance(reply["message"], str)
        if reply == {"type": "pong", "request_id": f"probe-{n}"}:
            return


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_fuzzed_frames_never_hurt_a_connection_or_its_room(service: ServiceProcess) -> None:
    with (
        connect(f"{service.ws_url}/ws/{ROOM}", open_timeout=10) as healthy_ws,
        connect(f"{service.ws_url}/ws/{ROOM}", open_timeout=10, max_size=2**22) as fuzzed,
        httpx.Client(base_url=service.base_url, timeout=10) as http,
    ):
        healthy = Listener(healthy_ws)
        try:
            _fuzz(fuzzed, healthy, http)
        finally:
            healthy.stop()


def _fuzz(fuzzed: ClientConnection, healthy: Listener, http: httpx.Client) -> None:
    fuzzed_id = _strict(fuzzed.recv(timeout=10))["connection_id"]
    published: list[int] = []
    examples = iter(range(10**9))

    def publish() -> None:
        body = {"agent": "fuzz", "status": "running", "message": f"#{len(published)}"}
        response = http.post(f"/api/sessions/{ROOM}/events", json=body)
        assert response.status_code == 202, response.text
        published.append(response.json()["seq"])

    pause = threading.Event()
    for _ in range(50):  # the healthy client's connection id, once it has one
        if healthy.messages:
            break
        pause.wait(0.1)
    target_ids = [healthy.messages[0]["connection_id"], fuzzed_id, "nobody.1"]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(frames(target_ids), min_size=1, max_size=4))
    def exercise(batch: list[str | bytes]) -> None:
        for frame in batch:
            fuzzed.send(frame)
        publish()
        _probe(fuzzed, next(examples), batch)

    exercise()
    publish()
    for _ in range(100):
        if healthy.seqs()[-1:] == published[-1:] or healthy.closed:
            break
        pause.wait(0.1)
    assert healthy.closed is None, f"the healthy client was dropped: {healthy.closed!r}"
    assert healthy.unreadable == []
    assert healthy.seqs() == published, "every event, once, in order"
    assert published == list(range(published[0], published[0] + len(published)))
