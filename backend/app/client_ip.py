"""The client's address: the peer's, or X-Forwarded-For's when the peer is a trusted proxy.

The same rule as uvicorn's ``--forwarded-allow-ips`` (``TRUSTED_PROXIES``): walk the
forwarded chain from the right, skipping trusted proxies; the first address that is not
one is the client. uvicorn may already have applied it (then the peer is the client and
is not trusted, so this changes nothing); this also holds where it has not. Pure.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, spec: str) -> None:
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        self.everyone = "*" in parts
        self.networks: list[Network] = []
        self.names: set[str] = set()
        for part in parts:
            if part == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                self.names.add(part)  # a unix socket path or a literal uvicorn accepts

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@lru_cache(maxsize=16)
def trusted_proxies(spec: str) -> TrustedProxies:
    return TrustedProxies(spec)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str | None:
    if peer is None or peer not in trusted or not forwarded_for:
        return peer
    chain = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(chain):
        if hop not in trusted:
            return hop
    return chain[0] if chain else peer
