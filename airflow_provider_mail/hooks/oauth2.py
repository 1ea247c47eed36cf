"""OAuth 2.0 access tokens for the mail hooks: fetched with Authlib, cached per process.

One token per credentials (token URL, client, secret, scope, refresh token) and mailbox,
shared by every session of the process (tasks, the triggerer's threads) until
:data:`~airflow_provider_mail.mail.oauth2.RENEW_FRACTION` of its lifetime is left.
Concurrent sessions that need a new one wait for one request to the token endpoint.

Authlib (``OAuth2Session``, on requests, which Airflow ships) builds the grant request,
authenticates the client and parses the answer and its RFC 6749 errors; this module only
decides when to ask and turns failures into one sentence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.mail.oauth2 import (
    AccessToken,
    OAuth2Credentials,
    choose_mechanism,
    classify_client_error,
    describe_token_error,
    endpoint_failed,
    endpoint_unreachable,
    no_oauth_mechanism,
    not_an_oauth_endpoint,
    sasl_string,
    token_from_response,
    token_refused,
)
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.masking import mask

#: How the client proves who it is to the token endpoint (RFC 6749 2.3.1): form fields
#: first (what Microsoft's and Google's documentation show), then HTTP Basic (what every
#: RFC 6749 server must accept). The one that worked is remembered per token URL.
CLIENT_AUTH_METHODS = ("client_secret_post", "client_secret_basic")


class TokenRefused(Exception):
    """The mail server said no to an access token (raised by a hook's SASL exchange)."""


Request = Callable[[OAuth2Credentials, float], Mapping[str, Any]]


_methods: dict[str, str] = {}
_methods_lock = threading.Lock()


def request_token(credentials: OAuth2Credentials, timeout: float) -> Mapping[str, Any]:
    """One token request (the grant follows ``credentials``); errors are MailErrors.

    The client authenticates as the endpoint last accepted, or tries form fields and then
    HTTP Basic; a public client (no secret, refresh-token grant) sends only its id.
    """
    import requests
    from authlib.integrations.base_client import OAuthError

    if not credentials.client_secret:
        methods: tuple[str, ...] = ("none",)
    else:
        with _methods_lock:
            known = _methods.get(credentials.token_url)
        methods = (known,) if known else CLIENT_AUTH_METHODS
    refusals: list[str] = []
    for method in methods:
        try:
            response = _request(credentials, timeout, method)
        except OAuthError as err:
            error, description = str(err.error or ""), str(err.description or "")
            if error == "invalid_client":
                refusals.append(description)
                continue  # perhaps the endpoint wants the other client authentication
            raise describe_token_error(credentials, error, description) from None
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else 0
            if status >= 500:
                raise endpoint_failed(credentials, status) from None
            raise not_an_oauth_endpoint(credentials, status) from None
        except requests.RequestException as err:
            raise endpoint_unreachable(credentials, _reason(err)) from None
        except ValueError:  # Authlib: the answer was not a JSON object
            raise not_an_oauth_endpoint(credentials, 200) from None
        if "access_token" not in response:
            raise not_an_oauth_endpoint(credentials, 200)
        if method != "none":
            with _methods_lock:
                _methods[credentials.token_url] = method
        return response
    # Every way of authenticating was refused: the most specific answer says why.
    said = next((text for text in refusals if classify_client_error(text)), refusals[0])
    raise describe_token_error(credentials, "invalid_client", said)


def _request(credentials: OAuth2Credentials, timeout: float, method: str) -> Mapping[str, Any]:
    from authlib.integrations.requests_client import OAuth2Session

    with OAuth2Session(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret or None,
        token_endpoint_auth_method=method,
        scope=credentials.scope or None,
    ) as session:
        if credentials.refresh_token:
            return dict(
                session.refresh_token(
                    credentials.token_url,
                    refresh_token=credentials.refresh_token,
                    timeout=timeout,
                )
            )
        return dict(
            session.fetch_token(
                credentials.token_url, grant_type="client_credentials", timeout=timeout
            )
        )


def _reason(err: Exception) -> str:
    """A short cause of a failed HTTP request (requests' own text holds the whole URL)."""
    import requests

    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.SSLError):
        return "its TLS certificate is not trusted"
    text = str(err).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    return type(err).__name__


@dataclass
class _Entry:
    """The token of one credentials key, and the refresh token to use next."""

    refresh_token: str = field(repr=False)
    token: AccessToken | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class TokenCache:
    """Access tokens of this process, one per credentials and mailbox; thread-safe.

    :param request: asks the token endpoint (default :func:`request_token`).
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, request: Request = request_token, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._request = request
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, credentials: OAuth2Credentials, account: str) -> _Entry:
        key = credentials.cache_key(account)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(credentials.refresh_token)
                for secret in credentials.secrets():
                    mask(secret)  # also when the connection did not come from Airflow's API
            return entry

    def get(self, credentials: OAuth2Credentials, account: str, timeout: float) -> AccessToken:
        """A token that is not due for renewal: the cached one, or one fetched now.

        Callers that arrive while another fetches wait for that fetch and share its token.
        A refresh token the endpoint rotates is used for the next refresh in this process
        (the connection keeps the one pasted into it).
        """
        entry = self._entry(credentials, account)
        with entry.lock:
            if entry.token is not None and entry.token.usable(self._clock()):
                return entry.token
            current = credentials
            if credentials.refresh_token:
                current = OAuth2Credentials(
                    credentials.token_url,
                    credentials.client_id,
                    credentials.client_secret,
                    entry.refresh_token,
                    credentials.scope,
                )
            response = self._request(current, timeout)
            token = token_from_response(response, self._clock(), time.time())
            mask(token.value)
            rotated = str(response.get("refresh_token") or "")
            if credentials.refresh_token and rotated and rotated != entry.refresh_token:
                mask(rotated)
                entry.refresh_token = rotated
            entry.token = token
            return token

    def discard(self, credentials: OAuth2Credentials, account: str, token: AccessToken) -> None:
        """Forget ``token`` (a server refused it), unless another caller replaced it already."""
        entry = self._entry(credentials, account)
        with entry.lock:
            if entry.token is token:
                entry.token = None

    def clear(self) -> None:
        """Forget every token and rotated refresh token (tests; a changed connection)."""
        with self._lock:
            self._entries.clear()


#: The process's tokens, shared by every hook.
TOKENS = TokenCache()


def sign_in(
    settings: ServerSettings,
    offered: Iterable[str],
    exchange: Callable[[str, str], None],
    tokens: TokenCache | None = None,
) -> AccessToken:
    """Sign in with an access token; returns the token the session was opened with.

    ``offered`` are the server's SASL mechanisms; ``exchange(mechanism, sasl_string)`` runs
    the protocol's SASL exchange and raises :class:`TokenRefused` when the server says no.
    A refused token is dropped from the cache and a new one tried once (the server may
    know it expired or was revoked before its time); a second refusal is one sentence.
    """
    credentials = settings.oauth2
    if credentials is None:
        raise ValueError("sign_in needs a connection with auth_type oauth2")
    tokens = tokens or TOKENS
    mechanism = choose_mechanism(offered)
    if mechanism is None:
        raise no_oauth_mechanism(settings.protocol, settings.address)
    for _attempt in range(2):
        token = tokens.get(credentials, settings.login, settings.timeout)
        try:
            exchange(
                mechanism,
                sasl_string(mechanism, settings.login, token.value, settings.host, settings.port),
            )
        except TokenRefused:
            tokens.discard(credentials, settings.login, token)
            continue
        return token
    raise token_refused(settings.protocol, settings.address, settings.login)


def due(token: AccessToken | None, tokens: TokenCache | None = None) -> bool:
    """Whether a session opened with ``token`` should be reopened with a fresh one."""
    if token is None:
        return False
    return not token.usable((tokens or TOKENS)._clock())


def seconds_left(token: AccessToken | None, tokens: TokenCache | None = None) -> float | None:
    """Seconds until a session opened with ``token`` is due for renewal; ``None``: never."""
    if token is None:
        return None
    return max(token.renew_at - (tokens or TOKENS)._clock(), 0.0)
