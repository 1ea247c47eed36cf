"""OAuth 2.0 sign-in, the pure part: credentials, token lifetimes, SASL strings, sentences.

Nothing here talks to a server; :mod:`airflow_provider_mail.hooks.oauth2` fetches and
caches the tokens, the hooks send the SASL strings.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mail.exceptions import MailAuthError, MailConfigError, MailConnectionError

#: ``auth_type`` values.
PASSWORD = "password"
OAUTH2 = "oauth2"

#: A cached token is used until this fraction of its lifetime is left, then replaced. A
#: fraction rather than a fixed margin, so a token that lives only seconds is reused too.
RENEW_FRACTION = 0.2

#: The lifetime assumed for a token whose endpoint did not say (``expires_in`` is optional).
ASSUMED_LIFETIME = 3600.0

#: SASL mechanisms in order of preference: XOAUTH2 is what Microsoft 365 speaks, and
#: Gmail speaks both; OAUTHBEARER (RFC 7628) is used when it is the only one offered.
XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

#: Where a DAG author looks up scopes and token URLs.
_RECIPES = "docs/oauth2.md"


@dataclass(frozen=True)
class OAuth2Credentials:
    """What a connection says about its OAuth 2.0 client (the secrets never in ``repr``).

    ``refresh_token`` set: the ``refresh_token`` grant (a user's delegated consent);
    empty: the ``client_credentials`` grant (an application's own access).
    """

    token_url: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scope: str = ""

    @property
    def grant(self) -> str:
        return "refresh_token" if self.refresh_token else "client_credentials"

    @property
    def endpoint_host(self) -> str:
        """The token endpoint's host, for messages (the whole URL may be masked in logs)."""
        return urlsplit(self.token_url).hostname or self.token_url

    def cache_key(self, account: str) -> str:
        """One token per credentials and mailbox; a digest, so no secret is a dict key."""
        parts = (
            self.token_url,
            self.client_id,
            self.client_secret,
            self.scope,
            self.refresh_token,
            account,
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown."""
        return tuple(value for value in (self.client_secret, self.refresh_token) if value)


def credentials_from_extra(
    conn_id: str, login: str, extra: Mapping[str, Any]
) -> OAuth2Credentials | None:
    """The OAuth fields of a connection's extras; ``None`` for password sign-in.

    Checked here, before anything is sent: a missing Token URL or Client ID, an
    ``http://`` Token URL other than the loopback, a missing User Name (the mailbox).
    """
    auth_type = str(extra.get("auth_type") or PASSWORD).strip().lower()
    if auth_type == PASSWORD:
        return None
    if auth_type != OAUTH2:
        raise MailConfigError(
            f"Connection {conn_id!r} has Authentication {auth_type!r}; choose password or oauth2."
        )

    def text(name: str) -> str:
        return str(extra.get(name) or "").strip()

    credentials = OAuth2Credentials(
        token_url=text("oauth2_token_url"),
        client_id=text("oauth2_client_id"),
        client_secret=text("oauth2_client_secret"),
        refresh_token=text("oauth2_refresh_token"),
        scope=" ".join(text("oauth2_scope").split()),
    )
    url = urlsplit(credentials.token_url)
    if url.scheme not in ("https", "http") or not url.hostname:
        raise MailConfigError(
            f"Connection {conn_id!r} uses oauth2 but its Token URL is not an http(s) URL; set "
            f"it to the token endpoint of your identity provider (see {_RECIPES})."
        )
    if url.scheme == "http" and url.hostname not in _LOOPBACK:
        raise MailConfigError(
            f"Connection {conn_id!r} has a Token URL without TLS (http://{url.hostname}); use "
            "https:// so that the client secret and tokens are not sent in plain text."
        )
    if not credentials.client_id:
        raise MailConfigError(
            f"Connection {conn_id!r} uses oauth2 but has no Client ID; paste the application "
            "(client) id of your app registration."
        )
    if not credentials.refresh_token and not credentials.client_secret:
        raise MailConfigError(
            f"Connection {conn_id!r} uses oauth2 without a refresh token, which needs a Client "
            "Secret (client_credentials grant); paste the client secret or a refresh token."
        )
    if not login:
        raise MailConfigError(
            f"Connection {conn_id!r} uses oauth2 but has no User Name; set it to the mailbox "
            "address, e.g. info@example.com."
        )
    return credentials


@dataclass(frozen=True)
class AccessToken:
    """An access token and when it was obtained (``time.monotonic()``), value not in repr."""

    value: str = field(repr=False)
    obtained: float
    lifetime: float

    @property
    def renew_at(self) -> float:
        """From this moment on (monotonic) a new token is fetched instead of this one."""
        return self.obtained + self.lifetime * (1 - RENEW_FRACTION)

    def usable(self, now: float) -> bool:
        return now < self.renew_at


def token_from_response(response: Mapping[str, Any], now: float, wall_now: float) -> AccessToken:
    """The access token of a token endpoint's JSON answer, received at ``now``.

    ``expires_in`` (seconds, RFC 6749) gives the lifetime; some libraries add
    ``expires_at`` (Unix time) instead; neither: :data:`ASSUMED_LIFETIME`.
    """
    lifetime = ASSUMED_LIFETIME
    try:
        if response.get("expires_in") not in (None, ""):
            lifetime = float(response["expires_in"])
        elif response.get("expires_at") not in (None, ""):
            lifetime = float(response["expires_at"]) - wall_now
    except (TypeError, ValueError):
        lifetime = ASSUMED_LIFETIME
    return AccessToken(str(response["access_token"]), now, max(lifetime, 0.0))


def xoauth2_string(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's format), not encoded."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def oauthbearer_string(user: str, access_token: str, host: str, port: int) -> str:
    """The SASL OAUTHBEARER initial response (RFC 7628), not encoded."""
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {access_token}\x01\x01"


def sasl_string(mechanism: str, user: str, access_token: str, host: str, port: int) -> str:
    if mechanism == OAUTHBEARER:
        return oauthbearer_string(user, access_token, host, port)
    return xoauth2_string(user, access_token)


def error_reply(mechanism: str) -> str:
    """What the client answers to the server's error challenge: an empty line (XOAUTH2)
    or a lone ``^A`` (OAUTHBEARER, RFC 7628 3.2.3); then the server says no."""
    return "\x01" if mechanism == OAUTHBEARER else ""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def choose_mechanism(offered: Iterable[str]) -> str | None:
    """XOAUTH2 when offered, else OAUTHBEARER when offered, else ``None``."""
    names = {name.upper() for name in offered}
    for mechanism in (XOAUTH2, OAUTHBEARER):
        if mechanism in names:
            return mechanism
    return None


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (for the server's own words)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# Words in an ``invalid_client`` description that mean the client id itself is unknown:
# Microsoft's AADSTS700016 ("Application with identifier ... was not found"), Google's
# "The OAuth client was not found.", and the usual phrasings of other servers.
_UNKNOWN_CLIENT = ("aadsts700016", "not found", "unknown client", "does not exist", "no such")
# ... and that the secret is wrong or expired: AADSTS7000215 (invalid), AADSTS7000222
# (expired), Google's "Unauthorized", "bad credentials".
_WRONG_SECRET = ("aadsts7000215", "aadsts7000222", "secret", "unauthorized", "credentials")


def classify_client_error(description: str) -> str | None:
    """``"unknown_client"``, ``"wrong_secret"`` or ``None`` for an ``invalid_client`` answer."""
    text = description.lower()
    if any(marker in text for marker in _UNKNOWN_CLIENT):
        return "unknown_client"
    if any(marker in text for marker in _WRONG_SECRET):
        return "wrong_secret"
    return None


def describe_token_error(
    credentials: OAuth2Credentials, error: str, description: str
) -> MailAuthError:
    """The sentence for an OAuth error answer (RFC 6749 5.2) of the token endpoint."""
    host = credentials.endpoint_host
    client = credentials.client_id
    # Microsoft answers an unknown client id with unauthorized_client (AADSTS700016).
    if error in ("invalid_client", "unauthorized_client"):
        kind = classify_client_error(description)
        if kind == "unknown_client":
            return MailAuthError(
                f"The token endpoint {host} does not know the client id {client!r}; check "
                "Client ID (for Microsoft 365 also the tenant in the Token URL)."
            )
        if kind == "wrong_secret":
            return MailAuthError(
                f"The token endpoint {host} rejected the client secret of {client!r}; paste "
                "the current secret value (not its id; secrets expire) into Client Secret."
            )
        if error == "invalid_client":
            return MailAuthError(
                f"The token endpoint {host} rejected the client id {client!r} or its secret; "
                "check Client ID and Client Secret."
            )
    if error == "invalid_grant" and credentials.refresh_token:
        return MailAuthError(
            f"The token endpoint {host} says the refresh token has expired or was revoked; "
            "sign in again and paste the new refresh token into Refresh Token."
        )
    if error == "invalid_scope":
        return MailAuthError(
            f"The token endpoint {host} refused the scope {credentials.scope!r}; set Scope to "
            f"one your app may request (see {_RECIPES})."
        )
    if error == "unauthorized_client":
        return MailAuthError(
            f"The client {client!r} may not use the {credentials.grant} grant at {host}; allow "
            "it in the app registration, or use the other grant."
        )
    said = scrub(" ".join(f"{error}: {description}".split())[:200], credentials.secrets())
    return MailAuthError(
        f"The token endpoint {host} refused to issue a token ({said}); check the connection's "
        "OAuth fields."
    )


def endpoint_unreachable(credentials: OAuth2Credentials, reason: str) -> MailConnectionError:
    return MailConnectionError(
        f"The token endpoint {credentials.endpoint_host} could not be reached ({reason}); "
        "check the Token URL and that this machine may connect to it."
    )


def not_an_oauth_endpoint(credentials: OAuth2Credentials, status: int) -> MailAuthError:
    return MailAuthError(
        f"{credentials.endpoint_host} did not answer like an OAuth 2.0 token endpoint "
        f"(HTTP {status}); check the Token URL (Microsoft 365: "
        "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token, Gmail: "
        "https://oauth2.googleapis.com/token)."
    )


def endpoint_failed(credentials: OAuth2Credentials, status: int) -> MailConnectionError:
    return MailConnectionError(
        f"The token endpoint {credentials.endpoint_host} failed (HTTP {status}); try again "
        "later, or check the identity provider's status."
    )


_PROTOCOL_NAMES = {"imap": "IMAP", "pop3": "POP", "smtp": "SMTP"}


def token_refused(protocol: str, address: str, login: str) -> MailAuthError:
    """The mail server refused a fresh token: wrong mailbox or a scope without mail access."""
    name = _PROTOCOL_NAMES.get(protocol, protocol.upper())
    return MailAuthError(
        f"{address} refused the OAuth token for {login!r}; check that User Name is a mailbox "
        f"this app may use and that Scope grants {name} access (see {_RECIPES})."
    )


def no_oauth_mechanism(protocol: str, address: str) -> MailAuthError:
    return MailAuthError(
        f"{address} does not offer OAuth sign-in (SASL XOAUTH2 or OAUTHBEARER) on this "
        f"{_PROTOCOL_NAMES.get(protocol, protocol)} connection; check the host, port and "
        "Security Method, or choose Authentication password."
    )
