"""Airflow connections that live only in the environment (``AIRFLOW_CONN_<ID>``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from devtools.certs import Certificate
from devtools.dovecot import Dovecot
from devtools.smtp import SMTP_PASSWORD, SMTP_USER, SmtpServer

# The test suite's mailboxes and their passwords.
USERS = {"info": "info-secret", "support": "support-secret", "leads": "leads-secret"}

# What the ``mail_connection`` fixture returns: define(conn_id, conn_type, **settings) -> conn_id.
ConnFactory = Callable[..., str]


def connection_variable(
    conn_id: str,
    conn_type: str,
    *,
    host: str = "localhost",
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> tuple[str, str]:
    """The environment variable (name, JSON value) that defines one connection.

    ``localhost`` (not 127.0.0.1) because the throw-away certificate names ``localhost``.
    """
    payload = {
        "conn_type": conn_type,
        "host": host,
        "port": port,
        "login": login,
        "password": password,
        "extra": extra,
    }
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload)


def mailbox_connection_variable(
    conn_id: str, server: Dovecot, protocol: str, user: str, certificate: Certificate
) -> tuple[str, str]:
    """The variable for a ``mail_imap`` / ``mail_pop3`` connection to ``user``'s mailbox.

    Implicit TLS trusting ``certificate``, as the deployments that run in their own
    processes (and so cannot use the ``mail_connection`` fixture) connect.
    """
    port = {"imap": server.imaps_port, "pop3": server.pop3s_port}[protocol]
    return connection_variable(
        conn_id,
        f"mail_{protocol}",
        port=port,
        login=user,
        password=server.users[user],
        security="ssl",
        server_certificate=certificate.pem,
        timeout=10,
    )


def smtp_connection_variable(
    conn_id: str, server: SmtpServer, certificate: Certificate
) -> tuple[str, str]:
    """The variable for a ``mail_smtp`` connection to ``server`` as the test user.

    The server's own security mode, trusting ``certificate``.
    """
    return connection_variable(
        conn_id,
        "mail_smtp",
        port=server.port,
        login=SMTP_USER,
        password=SMTP_PASSWORD,
        security=server.security,
        server_certificate=certificate.pem,
        timeout=10,
    )


def receive_connection(
    mail_connection: ConnFactory,
    server: Dovecot,
    protocol: str,
    security: str,
    certificate: Certificate | None,
    *,
    user: str = "info",
    conn_id: str | None = None,
    **overrides: Any,
) -> str:
    """A ``mail_imap`` / ``mail_pop3`` connection to ``server`` in one security mode."""
    ports = {
        ("imap", "ssl"): server.imaps_port,
        ("pop3", "ssl"): server.pop3s_port,
        ("imap", "starttls"): server.imap_port,
        ("imap", "none"): server.imap_port,
        ("pop3", "starttls"): server.pop3_port,
        ("pop3", "none"): server.pop3_port,
    }
    settings: dict[str, Any] = {
        "port": ports[(protocol, security)],
        "login": user,
        "password": server.users[user],
        "security": security,
        "server_certificate": certificate.pem if certificate else "",
        "timeout": 10,
    }
    settings.update(overrides)
    return mail_connection(
        conn_id or f"{protocol}_{security}_{user}", f"mail_{protocol}", **settings
    )
