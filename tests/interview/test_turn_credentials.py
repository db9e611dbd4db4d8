"""TURN REST API credentials and the ICE server lists (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from backend.app.settings import load_settings
from backend.core.settings import SettingsError
from interview_service.turn_credentials import (
    TurnServerSettings,
    ice_servers,
    server_ice_servers,
    turn_credentials,
)

NOW = 1_800_000_000.0


def test_credentials_follow_the_turn_rest_api() -> None:
    creds = turn_credentials("s3cret", "cand-7", ttl_s=3600, now=NOW)
    assert creds.username == "1800003600:cand-7"
    assert creds.expires_at == 1_800_003_600
    # coturn computes base64(HMAC-SHA1(secret, username)); the known value for these inputs:
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"1800003600:cand-7", hashlib.sha1).digest()
    ).decode()
    assert creds.credential == expected
    assert turn_credentials("other", "cand-7", ttl_s=3600, now=NOW).credential != expected


def test_a_colon_in_the_user_cannot_forge_another_expiry() -> None:
    creds = turn_credentials("s", "9999999999:evil", ttl_s=60, now=NOW)
    assert creds.username == "1800000060:9999999999_evil"


def test_browser_list_order_stun_udp_tcp_then_tls() -> None:
    turn = TurnServerSettings.parse("turn.example.com", "s", tls=True)
    stun, relay = ice_servers(turn, "u", ttl_s=60, now=NOW, stun_urls=["stun:x"])
    assert stun == {"urls": ["stun:turn.example.com:3478"]}
    assert relay["urls"] == [
        "turn:turn.example.com:3478?transport=udp",
        "turn:turn.example.com:3478?transport=tcp",
        "turns:turn.example.com:5349?transport=tcp",
        "turns:turn.example.com:443?transport=tcp",
    ]
    assert relay["username"].endswith(":u")


def test_without_tls_there_are_no_turns_urls() -> None:
    turn = TurnServerSettings.parse("10.0.0.5:3479", "s")
    _, relay = ice_servers(turn, "u", ttl_s=60, now=NOW, stun_urls=[])
    assert relay["urls"] == [
        "turn:10.0.0.5:3479?transport=udp",
        "turn:10.0.0.5:3479?transport=tcp",
    ]


def test_ipv6_servers_keep_their_brackets() -> None:
    turn = TurnServerSettings.parse("[2001:db8::1]:3478", "s")
    assert turn.host == "[2001:db8::1]"
    assert turn.port == 3478


def test_without_turn_browsers_get_stun_only() -> None:
    assert ice_servers(None, "u", ttl_s=60, now=NOW, stun_urls=["stun:a:1", "stun:b:2"]) == [
        {"urls": ["stun:a:1", "stun:b:2"]}
    ]


def test_the_server_peer_never_gets_a_public_stun_server() -> None:
    assert server_ice_servers(None, "srv", ttl_s=60, now=NOW) == []
    turn = TurnServerSettings.parse("turn.internal", "s")
    servers = server_ice_servers(turn, "srv", ttl_s=60, now=NOW)
    assert [s["urls"] for s in servers] == [
        ["stun:turn.internal:3478"],
        ["turn:turn.internal:3478?transport=udp"],  # UDP first: aiortc uses one TURN URL
    ]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"turn_server": "turn.example.com"}, "TURN_SECRET"),
        ({"turn_server": "turn:turn.example.com"}, "TURN_SERVER"),
        ({"interview_relay_only": True}, "INTERVIEW_RELAY_ONLY"),
    ],
)
def test_turn_settings_are_checked_at_start(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(environment="test", **overrides)
