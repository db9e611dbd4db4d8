"""TURN REST API credentials and the ICE server list, as pure functions.

coturn's ``use-auth-secret`` mode accepts ``username = "<unix expiry>:<user>"`` with
``credential = base64(HMAC-SHA1(secret, username))`` until the expiry passes, so the
service mints credentials without talking to coturn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

DEFAULT_TURN_PORT = 3478


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    username: str
    credential: str
    expires_at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class TurnServerSettings:
    """Where coturn listens and the secret it shares with this service."""

    host: str
    secret: str
    port: int = DEFAULT_TURN_PORT
    tls: bool = False
    tls_port: int = 5349

    @classmethod
    def parse(
        cls, server: str, secret: str, *, tls: bool = False, tls_port: int = 5349
    ) -> TurnServerSettings:
        host, port = server, DEFAULT_TURN_PORT
        if server.startswith("["):  # [v6]:port
            host, _, rest = server[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
            host = f"[{host}]"
        elif server.count(":") == 1:
            host, _, raw_port = server.partition(":")
            port = int(raw_port)
        return cls(host=host, secret=secret, port=port, tls=tls, tls_port=tls_port)


def turn_credentials(secret: str, user: str, ttl_s: float, now: float) -> TurnCredentials:
    """Credentials coturn accepts until ``now + ttl_s``."""
    expires_at = int(now + ttl_s)
    username = f"{expires_at}:{user.replace(':', '_')}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_servers(
    turn: TurnServerSettings | None,
    user: str,
    *,
    ttl_s: float,
    now: float,
    stun_urls: list[str],
) -> list[dict[str, Any]]:
    """The browser's list: stun, turn/UDP, turn/TCP, then turns; STUN only without TURN."""
    if turn is None:
        return [{"urls": list(stun_urls)}] if stun_urls else []
    creds = turn_credentials(turn.secret, user, ttl_s, now)
    address = f"{turn.host}:{turn.port}"
    urls = [f"turn:{address}?transport=udp", f"turn:{address}?transport=tcp"]
    if turn.tls:
        urls.append(f"turns:{turn.host}:{turn.tls_port}?transport=tcp")
        if turn.tls_port != 443:
            urls.append(f"turns:{turn.host}:443?transport=tcp")
    return [
        {"urls": [f"stun:{address}"]},
        {"urls": urls, "username": creds.username, "credential": creds.credential},
    ]


def server_ice_servers(
    turn: TurnServerSettings | None, user: str, *, ttl_s: float, now: float
) -> list[dict[str, Any]]:
    """The server peer's own list: its TURN over UDP first (aiortc uses only the first TURN URL).

    Never a public STUN server: with no route out, gathering would stall on it.
    """
    if turn is None:
        return []
    creds = turn_credentials(turn.secret, user, ttl_s, now)
    address = f"{turn.host}:{turn.port}"
    return [
        {"urls": [f"stun:{address}"]},  # a server-reflexive candidate (an EC2 Elastic IP)
        {
            "urls": [f"turn:{address}?transport=udp"],
            "username": creds.username,
            "credential": creds.credential,
        },
    ]
