"""Fixtures for the OAuth 2.0 tests: a token endpoint, Dovecot and aiosmtpd that take tokens.

The token endpoint knows three applications, all allowed the ``info`` mailbox:
``mail-app`` (form fields or HTTP Basic), ``basic-app`` (Basic only), ``form-app`` (form
fields only). Each test starts with an empty token cache and zeroed request counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.certs import Certificate
from devtools.connections import USERS, ConnFactory
from devtools.dovecot import Dovecot
from devtools.oauth_smtp import OAuthSmtpServer
from devtools.token_endpoint import BASIC, MAIL_SCOPE, POST, TokenEndpoint

CLIENT_ID = "mail-app"
CLIENT_SECRET = "app-Secret-0815-xyz"
MAILBOX = "info"

OAuthConnFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token_endpoint() -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint().start()
    endpoint.add_client(CLIENT_ID, CLIENT_SECRET, MAILBOX)
    endpoint.add_client("basic-app", "basic-Secret-4242", MAILBOX, auth_methods=(BASIC,))
    endpoint.add_client("form-app", "form-Secret-4343", MAILBOX, auth_methods=(POST,))
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(
    workdir: Path, certificate: Certificate, token_endpoint: TokenEndpoint
) -> Iterator[Dovecot]:
    """Dovecot that takes access tokens (checked at the endpoint) as well as passwords."""
    server = Dovecot(
        workdir / "dovecot-oauth",
        certificate,
        users=dict(USERS),
        oauth2_introspection_url=token_endpoint.introspection_url,
        # A refused token is answered at once (the default waits 2 s per failure).
        extra_config="auth_failure_delay = 0 secs\n",
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oauth_smtp_server(
    certificate: Certificate, token_endpoint: TokenEndpoint
) -> Iterator[OAuthSmtpServer]:
    server = OAuthSmtpServer(certificate, token_endpoint)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth(
    token_endpoint: TokenEndpoint, oauth_dovecot: Dovecot, oauth_smtp_server: OAuthSmtpServer
) -> Iterator[TokenEndpoint]:
    """The endpoint with fresh counters and default lifetime, an empty token cache, and
    the ``info`` inbox empty."""
    from airflow_provider_mail.hooks import oauth2

    oauth2.TOKENS.clear()
    oauth2._methods.clear()
    token_endpoint.reset_counts()
    token_endpoint.lifetime = 3600.0
    token_endpoint.rotate_refresh_tokens = False
    oauth_smtp_server.recorder.reset()
    oauth_dovecot.clear(MAILBOX)
    yield token_endpoint
    oauth2.TOKENS.clear()


@pytest.fixture
def oauth_connection(
    mail_connection: ConnFactory,
    certificate: Certificate,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
    oauth_smtp_server: OAuthSmtpServer,
) -> OAuthConnFactory:
    """Define an OAuth connection: ``oauth_connection("imap", grant="refresh_token")``.

    ``imap``/``pop3`` go to the OAuth Dovecot (STARTTLS), ``smtp`` to the OAuth aiosmtpd.
    Keyword arguments override settings (``login``, ``oauth2_client_secret``...).
    """

    def define(protocol: str, grant: str = "client_credentials", **overrides: Any) -> str:
        port = {
            "imap": oauth_dovecot.imap_port,
            "pop3": oauth_dovecot.pop3_port,
            "smtp": oauth_smtp_server.port,
        }[protocol]
        settings: dict[str, Any] = {
            "port": port,
            "login": MAILBOX,
            "security": "starttls",
            "server_certificate": certificate.pem,
            "timeout": 10,
            "auth_type": "oauth2",
            "oauth2_token_url": oauth.token_url,
            "oauth2_client_id": CLIENT_ID,
            "oauth2_client_secret": CLIENT_SECRET,
            "oauth2_scope": f"{MAIL_SCOPE} offline_access",
        }
        if grant == "refresh_token":
            settings["oauth2_refresh_token"] = oauth.sign_in(CLIENT_ID, MAILBOX)
        settings.update(overrides)
        conn_id = settings.pop("conn_id", None) or f"oauth_{protocol}_{grant}"
        return mail_connection(conn_id, f"mail_{protocol}", **settings)

    return define
