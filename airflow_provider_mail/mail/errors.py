"""Turn low-level network and TLS errors into one sentence a DAG author can act on."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl

from airflow_provider_mail.exceptions import (
    MailAuthError,
    MailConnectionError,
    MailError,
    MailProtocolError,
    MailTLSError,
)
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.tls import Security, default_port

# OpenSSL verify codes (X509_V_ERR_*) that mean "nobody you trust signed this".
_UNTRUSTED_CODES = {18, 19, 20, 21, 27}
_NAME_MISMATCH_CODES = {62, 64}  # host name, IP address
_EXPIRED = 10


def describe_network_error(err: BaseException, settings: ServerSettings) -> MailError:
    """Map an exception raised while connecting or talking to the server to a MailError."""
    where = settings.address
    if isinstance(err, MailError):
        return err
    if isinstance(err, ssl.SSLCertVerificationError):
        return _describe_certificate_error(err, settings)
    if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return _closed(where)
    if isinstance(err, ssl.SSLError):
        return MailTLSError(
            f"TLS with {where} failed ({err.reason or err.strerror or 'handshake error'}); "
            "check that Security Method matches the port (ssl for an implicit-TLS port such as "
            "993, 995 or 465; starttls or none for 143, 110, 587 or 25)."
        )
    if isinstance(err, socket.gaierror):
        return MailConnectionError(
            f"Host name {settings.host!r} could not be resolved; check the Email Host Name."
        )
    if isinstance(err, ConnectionRefusedError):
        return MailConnectionError(
            f"Connection to {where} was refused; check the Email Server Port Number and that "
            "the mail server is running."
        )
    if isinstance(err, TimeoutError):
        return MailConnectionError(
            f"{where} did not answer within {settings.timeout:g} seconds; check the host, the "
            "port, the Security Method and any firewall, or raise the connection's timeout."
        )
    if isinstance(err, (ConnectionResetError, BrokenPipeError, EOFError, ConnectionAbortedError)):
        return _closed(where)
    if isinstance(err, (imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPResponseException)):
        return MailProtocolError(
            f"{where} refused a command ({server_reply(err)}); check the connection's settings "
            "and the server's log."
        )
    if isinstance(err, OSError):
        reason = err.strerror or type(err).__name__
        return MailConnectionError(
            f"Could not talk to {where} ({reason}); check the host, the port and the network."
        )
    return MailConnectionError(
        f"Unexpected {type(err).__name__} while talking to {where}; check the connection settings."
    )


def _closed(where: str) -> MailConnectionError:
    return MailConnectionError(
        f"{where} closed the connection unexpectedly; check that Security Method matches "
        "the port and that the server accepts clients from this machine."
    )


def _describe_certificate_error(
    err: ssl.SSLCertVerificationError, settings: ServerSettings
) -> MailTLSError:
    where = settings.address
    code = getattr(err, "verify_code", None)
    if code in _NAME_MISMATCH_CODES:
        return MailTLSError(
            f"The certificate of {where} is not valid for the host name {settings.host!r}; "
            "use the host name the certificate was issued for as Email Host Name."
        )
    if code == _EXPIRED:
        return MailTLSError(
            f"The certificate of {where} has expired; renew the server's certificate."
        )
    if code in _UNTRUSTED_CODES or settings.server_certificate:
        hint = (
            "the pasted Server Certificate does not match it; paste the certificate the server "
            "actually presents (or its CA)"
            if settings.server_certificate
            else "if it is self-signed or from a private CA, paste that certificate into the "
            "connection's Server Certificate field"
        )
        return MailTLSError(f"The certificate of {where} is not trusted; {hint}.")
    return MailTLSError(
        f"The certificate of {where} could not be verified "
        f"({err.verify_message or 'unknown reason'}); fix the server's certificate or paste a "
        "trusted one into Server Certificate."
    )


def server_reply(err: BaseException) -> str:
    """The server's own words from a protocol error, short and as text."""
    if isinstance(err, smtplib.SMTPResponseException):
        raw: object = err.smtp_error
        prefix = f"{err.smtp_code} "
    else:
        raw = err.args[0] if err.args else ""
        prefix = ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return (prefix + " ".join(text.split()))[:200] or type(err).__name__


def login_rejected(settings: ServerSettings) -> MailAuthError:
    """The server refused the user name or the password (never quoted)."""
    return MailAuthError(
        f"{settings.address} rejected the user name {settings.login!r} or its password; "
        "check User Name and Password."
    )


def password_not_ascii(settings: ServerSettings) -> MailAuthError:
    """The password cannot be sent: the login commands carry ASCII only (never quoted)."""
    return MailAuthError(
        f"The password for {settings.login!r} at {settings.address} contains characters "
        "outside ASCII, which this login method cannot send; use an ASCII password or an "
        "app password."
    )


def starttls_not_offered(settings: ServerSettings) -> MailTLSError:
    """``starttls`` was chosen but the server does not offer it: nothing was sent."""
    ssl_port = default_port(settings.protocol, Security.SSL)
    return MailTLSError(
        f"{settings.address} does not offer STARTTLS, so nothing was sent in plain text; "
        f"choose Security Method ssl (port {ssl_port}) or none."
    )
