"""An aiosmtpd server that signs clients in with OAuth 2.0 (SASL XOAUTH2 and OAUTHBEARER).

The handler's ``auth_XOAUTH2`` / ``auth_OAUTHBEARER`` methods check the bearer token with
the test :class:`TokenEndpoint` (as Dovecot does over HTTP), and answer a refused token
as Gmail does: a ``334`` error report, then ``535``. It offers STARTTLS and requires it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from devtools.certs import Certificate
from devtools.smtp import SmtpServer
from devtools.token_endpoint import TokenEndpoint

ERROR_REPORT = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})


class OAuthSmtpServer(SmtpServer):
    """The ``starttls`` flavour of :class:`SmtpServer`, signing in with access tokens."""

    def __init__(self, certificate: Certificate, endpoint: TokenEndpoint) -> None:
        super().__init__("starttls", certificate)
        self.endpoint = endpoint
        handler = self.recorder

        async def sign_in(server: SMTP, args: list[str], mechanism: str) -> AuthResult:
            if len(args) > 1:  # ["XOAUTH2", initial response]
                response: Any = base64.b64decode(args[1])
            else:
                response = await server.challenge_auth("")
                if response is MISSING:
                    return AuthResult(success=False, handled=True)
            user, token = _parse(mechanism, bytes(response).decode())
            answer = endpoint.introspect(token)
            if answer.get("active") and answer.get("username") == user:
                handler.logins.append(f"{mechanism}:{user}")
                return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
            await server.challenge_auth(ERROR_REPORT)  # the client acknowledges it
            return AuthResult(success=False, handled=False)

        async def auth_XOAUTH2(server: SMTP, args: list[str]) -> AuthResult:
            return await sign_in(server, args, "XOAUTH2")

        async def auth_OAUTHBEARER(server: SMTP, args: list[str]) -> AuthResult:
            return await sign_in(server, args, "OAUTHBEARER")

        # aiosmtpd looks the mechanisms up on the handler object when a session starts.
        handler.auth_XOAUTH2 = auth_XOAUTH2  # type: ignore[attr-defined]
        handler.auth_OAUTHBEARER = auth_OAUTHBEARER  # type: ignore[attr-defined]


def _parse(mechanism: str, text: str) -> tuple[str, str]:
    """(user, token) of an XOAUTH2 or OAUTHBEARER initial response."""
    user = token = ""
    for part in text.split("\x01"):
        if part.startswith("user="):
            user = part[5:]
        elif part.startswith("auth=Bearer "):
            token = part[12:]
        elif mechanism == "OAUTHBEARER" and part.startswith("n,a="):
            user = part[4:].split(",", 1)[0].replace("=2C", ",").replace("=3D", "=")
    return user, token
