"""A small OAuth 2.0 authorization server on 127.0.0.1, for the OAuth sign-in tests.

- ``POST /token``: the ``client_credentials`` and ``refresh_token`` grants (RFC 6749), the
  client authenticated by form fields or HTTP Basic (each client says which it accepts),
  tokens that live ``lifetime`` seconds, optionally rotated refresh tokens;
- ``POST /introspect`` (RFC 7662, what Dovecot's ``oauth2`` passdb asks with
  ``introspection_mode = post``): ``active``, ``username`` and ``scope`` of a token; a
  token is active for mail only while it lives and when its scope holds :data:`MAIL_SCOPE`;
- any other path: an HTML page, as a wrong Token URL would give.

Errors use Microsoft's words (``AADSTS...``), so the client's sentences are tested against
what Microsoft 365 answers. Every request is counted.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

#: The scope a token needs for IMAP, POP3 and SMTP access.
MAIL_SCOPE = "mail"

POST = "post"
BASIC = "basic"


@dataclass
class Client:
    """A registered application: it may read ``mailbox`` (app-only access)."""

    client_id: str
    secret: str
    mailbox: str
    auth_methods: tuple[str, ...] = (POST, BASIC)


@dataclass
class Issued:
    user: str
    scope: str
    client_id: str
    expires: float  # monotonic


@dataclass
class TokenEndpoint:
    """The server; ``start()`` it, register clients, ``stop()`` it."""

    lifetime: float = 3600.0
    rotate_refresh_tokens: bool = False
    clients: dict[str, Client] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> client, user
    tokens: dict[str, Issued] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    @property
    def issued(self) -> int:
        """Access tokens handed out so far."""
        return self.requests["issued"]

    def add_client(
        self,
        client_id: str,
        secret: str,
        mailbox: str,
        auth_methods: tuple[str, ...] = (POST, BASIC),
    ) -> Client:
        client = Client(client_id, secret, mailbox, auth_methods)
        self.clients[client_id] = client
        return client

    def sign_in(self, client_id: str, user: str) -> str:
        """A user's consent: a new refresh token of ``client_id`` for ``user``'s mailbox."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self.refresh_tokens[token] = (client_id, user)
        return token

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self.refresh_tokens.pop(refresh_token, None)

    def expire_all(self) -> None:
        """Every access token issued so far stops working now (the server's side)."""
        with self._lock:
            for issued in self.tokens.values():
                issued.expires = 0.0

    def reset_counts(self) -> None:
        self.requests.clear()

    def start(self) -> TokenEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                path = self.path.split("?", 1)[0]
                if path == "/token":
                    status, body = endpoint._token(form, self.headers.get("Authorization"))
                elif path == "/introspect":
                    status, body = 200, endpoint._introspect(form.get("token", ""))
                else:
                    self._html()
                    return
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._html()

            def _html(self) -> None:
                page = b"<html><body><h1>Not Found</h1></body></html>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are counted, not printed

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _token(self, form: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        grant = form.get("grant_type", "")
        with self._lock:
            self.requests[f"token:{grant}"] += 1
        client_id, secret, method = _client_credentials(form, authorization)
        client = self.clients.get(client_id)
        if client is None:
            return 400, _error(
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                "directory 'Test'.",
            )
        if method not in client.auth_methods:
            return 401, _error(
                "invalid_client",
                "AADSTS7000218: The request body must contain the parameter "
                "'client_assertion' or 'client_secret'.",
            )
        if secret != client.secret:
            return 401, _error("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = " ".join(form.get("scope", "").split())
        if grant == "client_credentials":
            user = client.mailbox
            next_refresh = None
        elif grant == "refresh_token":
            with self._lock:
                owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if owner is None or owner[0] != client_id:
                return 400, _error(
                    "invalid_grant",
                    "AADSTS70008: The provided authorization code or refresh token has expired "
                    "due to inactivity.",
                )
            user = owner[1]
            next_refresh = self.sign_in(client_id, user) if self.rotate_refresh_tokens else None
        else:
            return 400, _error("unsupported_grant_type", f"grant {grant!r} is not supported")
        access = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[access] = Issued(user, scope, client_id, time.monotonic() + self.lifetime)
            self.requests["issued"] += 1
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": self.lifetime,
            "scope": scope,
        }
        if next_refresh:
            body["refresh_token"] = next_refresh
        return 200, body

    def introspect(self, token: str) -> dict[str, Any]:
        """What ``/introspect`` answers for ``token`` (the SMTP test server asks directly)."""
        with self._lock:
            issued = self.tokens.get(token)
        if (
            issued is None
            or time.monotonic() >= issued.expires
            or MAIL_SCOPE not in issued.scope.split()
        ):
            return {"active": False}
        return {"active": True, "username": issued.user, "scope": issued.scope}

    def _introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.requests["introspect"] += 1
        return self.introspect(token)


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str, str, str]:
    """(client id, secret, how they came: basic or post) of a token request."""
    if authorization and authorization.lower().startswith("basic "):
        decoded = base64.b64decode(authorization[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret), BASIC
    return form.get("client_id", ""), form.get("client_secret", ""), POST


def _error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}
