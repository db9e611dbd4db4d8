"""Which webhook targets are allowed: a URL's shape, then the addresses its host resolves to.

Loopback, private (RFC 1918, ULA), link-local (169.254.169.254 included), CGNAT,
multicast and reserved addresses are refused unless the deployment allows private
targets; IPv4-mapped IPv6 forms of them likewise. The outbox connects to an address
returned here, never to the name again (:mod:`interview_service.webhooks`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from backend.core.errors import InvalidInput

MAX_URL_CHARS = 2048
RESOLVE_TIMEOUT_S = 5.0


class WebhookTargetRefused(InvalidInput):
    code = "webhook_url_refused"


def check_url_shape(url: str, *, production: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, before any DNS."""
    if len(url) > MAX_URL_CHARS:
        raise WebhookTargetRefused(f"webhook_url is over {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookTargetRefused(f"webhook_url is not a URL: {exc}") from None
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        raise WebhookTargetRefused(
            "webhook_url must be https" + ("" if production else " (or http outside production)")
        )
    if not parts.hostname:
        raise WebhookTargetRefused("webhook_url has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("webhook_url may not carry credentials")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve_target(url: str, *, production: bool, allow_private: bool) -> list[str]:
    """The addresses a delivery may connect to; refused when any is private and not allowed."""
    _, host, port = check_url_shape(url, production=production)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except (OSError, TimeoutError) as exc:
        raise WebhookTargetRefused(
            f"webhook_url's host {host!r} does not resolve: {exc or 'timed out'}"
        ) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookTargetRefused(f"webhook_url's host {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if not _public(address):
                raise WebhookTargetRefused(
                    f"webhook_url's host {host!r} resolves to a private, loopback or "
                    "link-local address"
                )
    return addresses
