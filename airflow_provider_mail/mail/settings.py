"""What a connection says about a mail server, as a frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail.oauth2 import OAuth2Credentials, credentials_from_extra
from airflow_provider_mail.mail.tls import Security, default_port

DEFAULT_TIMEOUT = 30.0

#: ``claim_lock`` values: claims exclusive among the pollers of one host (the default), or
#: across hosts through a lock folder on the IMAP server.
HOST_LOCK = "host"
SERVER_LOCK = "server"


@dataclass(frozen=True)
class ServerSettings:
    """Everything needed to open one session with a mail server."""

    protocol: str
    host: str
    port: int
    security: Security
    login: str = ""
    password: str = field(default="", repr=False)
    server_certificate: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    claim_lock: str = HOST_LOCK
    #: ``auth_type`` ``oauth2``: the OAuth client that gets the access tokens; ``None``:
    #: the password.
    oauth2: OAuth2Credentials | None = None

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"

    @property
    def account(self) -> str:
        """``login@host:port``: identifies one mailbox, for state kept per account."""
        return f"{self.login}@{self.address}"


def settings_from_connection(
    protocol: str,
    *,
    conn_id: str,
    host: str | None,
    port: int | str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> ServerSettings:
    """Build :class:`ServerSettings` from a connection's fields, tolerant of how extras arrive.

    Extras may come from the UI (``timeout`` as an int) or the CLI (``"30"``); empty values
    take the defaults of the SPEC.
    """
    if not host or not str(host).strip():
        raise MailConfigError(
            f"Connection {conn_id!r} has no Email Host Name; set the mail server's host name."
        )
    security = Security.parse(extra.get("security"))
    try:
        resolved_port = int(port) if port not in (None, "") else default_port(protocol, security)
    except ValueError:
        raise MailConfigError(
            f"Connection {conn_id!r} has port {port!r}, which is not a number; "
            "set the Email Server Port Number or leave it empty for the default."
        ) from None
    raw_timeout = extra.get("timeout")
    try:
        timeout = float(raw_timeout) if raw_timeout not in (None, "") else DEFAULT_TIMEOUT
    except (TypeError, ValueError):
        raise MailConfigError(
            f"Connection {conn_id!r} has timeout {raw_timeout!r}, which is not a number of "
            "seconds; set it to a number such as 30."
        ) from None
    if timeout <= 0:
        raise MailConfigError(
            f"Connection {conn_id!r} has timeout {raw_timeout!r}; set a positive number of seconds."
        )
    claim_lock = str(extra.get("claim_lock") or HOST_LOCK).strip().lower()
    if claim_lock not in (HOST_LOCK, SERVER_LOCK):
        raise MailConfigError(
            f"Connection {conn_id!r} has claim_lock {extra.get('claim_lock')!r}; use "
            f"{HOST_LOCK!r} (pollers on one host) or {SERVER_LOCK!r} (pollers on several hosts)."
        )
    return ServerSettings(
        protocol=protocol,
        host=str(host).strip(),
        port=resolved_port,
        security=security,
        login=login or "",
        password=password or "",
        server_certificate=str(extra.get("server_certificate") or ""),
        timeout=timeout,
        claim_lock=claim_lock,
        oauth2=credentials_from_extra(conn_id, login or "", extra),
    )
