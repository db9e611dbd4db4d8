"""The one rule for a client's seq, and the frame parser's bounds: no sockets."""

from __future__ import annotations

import pytest

from backend.core.errors import InvalidInput
from backend.hub.json_shape import json_problem
from backend.hub.protocol import MAX_DEPTH, ProtocolError, parse_frame
from backend.hub.seq import MAX_SEQ, seq_from_json, seq_from_query


@pytest.mark.parametrize("value", [0, 1, 42, MAX_SEQ])
def test_seqs_within_the_bounds_pass(value: int) -> None:
    assert seq_from_json(value) == value
    assert seq_from_query(str(value)) == value


@pytest.mark.parametrize("value", [-1, 2**63, 2**64, 2**64 + 1, 10**40, True, 1.0, "3", None])
def test_json_seqs_out_of_bounds_or_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        seq_from_json(value)
    assert caught.value.code == "invalid_last_seq"


@pytest.mark.parametrize(
    "raw", ["-1", "abc", "1.5", " 1", "٣", "²", str(2**63), str(2**64), "9" * 400, "+1"]
)
def test_query_seqs_out_of_bounds_or_not_digits_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        seq_from_query(raw)
    assert caught.value.code == "invalid_last_seq"


@pytest.mark.parametrize("raw", [None, ""])
def test_absent_query_seq_is_none(raw: str | None) -> None:
    assert seq_from_query(raw) is None


@pytest.mark.parametrize("action", ["joinRoom", "subscribe", "resume", "leaveRoom"])
@pytest.mark.parametrize("value", [2**63, 2**64, 18446744073709551615])
def test_frames_with_huge_last_seq_are_bad_input(action: str, value: int) -> None:
    text = f'{{"action": "{action}", "room": "s1", "last_seq": {value}, "request_id": "r"}}'
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text)
    assert (caught.value.code, caught.value.request_id) == ("invalid_last_seq", "r")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_an_error_not_a_recursion_error(depth: int) -> None:
    message = "[" * depth + "]" * depth
    for text in (message, f'{{"action": "broadcast", "message": {message}}}'):
        with pytest.raises(ProtocolError) as caught:
            parse_frame(text)
        assert caught.value.code == "too_deep"


def test_nesting_up_to_the_limit_is_fine() -> None:
    inner = '{"a": ' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1)
    frame = parse_frame(f'{{"action": "broadcast", "message": {inner}}}')
    assert frame.message is not None


@pytest.mark.parametrize(
    "message",
    ["NaN", "Infinity", "-Infinity", '"x\\ud800y"', '{"\\udfff": 1}', "[1, [2, [NaN]]]"],
)
def test_json_other_clients_cannot_read_is_refused(message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_frame(f'{{"action": "broadcast", "message": {message}, "request_id": 4}}')
    assert (caught.value.code, caught.value.request_id) == ("invalid_json", 4)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"a": [1, 2.5, "é", None, True]}, True),
        ({"a": float("nan")}, False),
        ([float("inf")], False),
        ({"k\ud800": 1}, False),
        ("\udfff", False),
    ],
)
def test_json_problem(value: object, ok: bool) -> None:
    assert (json_problem(value) is None) is ok
