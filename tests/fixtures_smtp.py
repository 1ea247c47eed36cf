"""Pytest fixtures for the send side: real aiosmtpd servers and SMTP connections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.certs import Certificate
from devtools.smtp import SMTP_PASSWORD, SMTP_USER, SilentServer, SmtpServer, SmtpServers

SmtpConnFactory = Callable[..., str]


@pytest.fixture(scope="session")
def smtp_servers(certificate: Certificate) -> Iterator[SmtpServers]:
    """The four aiosmtpd servers (plain, STARTTLS, no-STARTTLS, implicit TLS), once per session."""
    # aiosmtpd logs every command at INFO (and warns about its own deprecated attribute);
    # the recorded messages say what a test needs.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    servers = SmtpServers(certificate).start()
    yield servers
    servers.stop()


@pytest.fixture
def smtp(smtp_servers: SmtpServers) -> Iterator[SmtpServers]:
    """The SMTP servers with nothing recorded and no recipient refused yet."""
    smtp_servers.reset()
    yield smtp_servers
    smtp_servers.reset()


@pytest.fixture
def smtp_connection(
    mail_connection: Callable[..., str], certificate: Certificate
) -> SmtpConnFactory:
    """Define a ``mail_smtp`` connection to one of the test servers; returns its id.

    ``smtp_connection(smtp.starttls)`` trusts the test certificate, logs in with the test
    user and connects to ``localhost``; keyword arguments override any setting
    (``password=...``, ``server_certificate=""``, ``host="127.0.0.1"``...).
    """

    def define(server: SmtpServer, conn_id: str | None = None, **overrides: Any) -> str:
        settings: dict[str, Any] = {
            "host": "localhost",
            "port": server.port,
            "login": SMTP_USER,
            "password": SMTP_PASSWORD,
            "security": server.security,
            "server_certificate": certificate.pem,
            "timeout": 10,
        }
        settings.update(overrides)
        return mail_connection(conn_id or f"smtp_{server.flavour}", "mail_smtp", **settings)

    return define


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A listening port that never answers (for timeouts)."""
    server = SilentServer()
    yield server
    server.close()
