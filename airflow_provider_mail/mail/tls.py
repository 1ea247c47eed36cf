"""Security modes, default ports and TLS contexts."""

from __future__ import annotations

import ssl
from enum import Enum

from airflow_provider_mail.exceptions import MailConfigError


class Security(str, Enum):
    """The connection's "Security Method"."""

    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"

    @classmethod
    def parse(cls, value: object) -> Security:
        """Read the ``security`` extra; empty means the default, ``ssl``."""
        text = str(value or cls.SSL.value).strip().lower()
        try:
            return cls(text)
        except ValueError:
            raise MailConfigError(
                f"Security Method {text!r} is not known; choose one of none, starttls or ssl."
            ) from None


_DEFAULT_PORTS: dict[str, dict[Security, int]] = {
    "imap": {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143},
    "pop3": {Security.SSL: 995, Security.STARTTLS: 110, Security.NONE: 110},
    "smtp": {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25},
}


def default_port(protocol: str, security: Security) -> int:
    """The port a server of ``protocol`` listens on for ``security`` when none is given.

    >>> default_port("imap", Security.SSL)
    993
    """
    return _DEFAULT_PORTS[protocol][security]


def build_ssl_context(server_certificate: str | None) -> ssl.SSLContext:
    """A client TLS context that always verifies the chain and the host name.

    ``server_certificate`` is PEM text pasted into the connection: when given, the
    server's certificate must chain to it (a self-signed certificate or a private CA);
    when empty, the system trust store is used.
    """
    pem = (server_certificate or "").strip()
    if not pem:
        return ssl.create_default_context()
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise MailConfigError(
            "Server Certificate is not a PEM certificate; paste the text that starts with "
            "-----BEGIN CERTIFICATE-----, or leave it empty to use the system trust store."
        )
    try:
        return ssl.create_default_context(cadata=pem + "\n")
    except ssl.SSLError as err:
        raise MailConfigError(
            "Server Certificate could not be read as a PEM certificate; paste the whole "
            "certificate including its BEGIN and END lines."
        ) from err
