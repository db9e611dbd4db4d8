"""Who is calling, from whichever credential came: a JWT (users, agents) or an API key.

The transports read the credential (a header, ``?token=``, ``?api_key=``) and hand it
here; a key wins when both are given, since only machine clients hold one.
"""

from __future__ import annotations

from backend.core.api_keys import ApiKeys
from backend.core.auth import Principal, TokenVerifier


class Authenticator:
    def __init__(self, tokens: TokenVerifier, keys: ApiKeys) -> None:
        self.tokens = tokens
        self.keys = keys

    async def authenticate(
        self, *, token: str | None = None, api_key: str | None = None
    ) -> Principal:
        if api_key:
            return await self.keys.verify(api_key)
        return await self.tokens.verify(token)
