"""The protocol core, fed strings: no sockets."""

from __future__ import annotations

import pytest

from backend.hub.protocol import Action, ProtocolError, parse_frame


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"room": "a"}', "missing_action"),
        ('{"action": "dance"}', "unknown_action"),
        ('{"action": 7}', "unknown_action"),
        ('{"action": "joinRoom"}', "missing_field"),
        ('{"action": "joinRoom", "room": "has space"}', "invalid_room"),
        ('{"action": "joinRoom", "room": "' + "x" * 129 + '"}', "invalid_room"),
        ('{"action": "resume", "room": "s1"}', "missing_field"),
        ('{"action": "resume", "room": "s1", "last_seq": -1}', "invalid_last_seq"),
        ('{"action": "resume", "room": "s1", "last_seq": "3"}', "invalid_last_seq"),
        ('{"action": "resume", "room": "s1", "last_seq": true}', "invalid_last_seq"),
        ('{"action": "sendMessage", "message": "hi"}', "missing_field"),
        ('{"action": "sendMessage", "targetId": "n.1"}', "missing_field"),
        ('{"action": "broadcast"}', "missing_field"),
    ],
)
def test_bad_frames_name_their_problem(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text)
    assert caught.value.code == code
    assert caught.value.message


def test_request_id_survives_into_the_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_frame('{"action": "joinRoom", "request_id": "r-1"}')
    assert caught.value.request_id == "r-1"


@pytest.mark.parametrize(
    ("alias", "action"),
    [
        ("subscribe", Action.JOIN),
        ("joinRoom", Action.JOIN),
        ("unsubscribe", Action.LEAVE),
        ("leaveRoom", Action.LEAVE),
    ],
)
def test_aliases(alias: str, action: Action) -> None:
    frame = parse_frame(f'{{"action": "{alias}", "room": "s-1", "request_id": 9}}')
    assert frame.action is action
    assert frame.room == "s-1"
    assert frame.request_id == 9


def test_resume_carries_last_seq_and_epoch() -> None:
    frame = parse_frame('{"action": "resume", "room": "s1", "last_seq": 42, "epoch": "ab12"}')
    assert (frame.action, frame.last_seq, frame.epoch) == (Action.RESUME, 42, "ab12")


def test_send_message_and_broadcast_fields() -> None:
    send = parse_frame('{"action": "sendMessage", "targetId": "n1.4", "message": {"x": 1}}')
    assert (send.target_id, send.message) == ("n1.4", {"x": 1})
    bcast = parse_frame('{"action": "broadcast", "message": "hello"}')
    assert bcast.room is None
    assert bcast.message == "hello"
