"""SmtpHook: one authenticated SMTP session (smtplib)."""

from __future__ import annotations

import smtplib

from airflow_provider_mail.exceptions import MailAuthError, MailTLSError
from airflow_provider_mail.hooks.base import MailHook
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.tls import Security, build_ssl_context


class SmtpHook(MailHook[smtplib.SMTP]):
    """Send email over SMTP (connection type ``mail_smtp``).

    :param conn_id: a ``mail_smtp`` connection, default ``mail_smtp_default``.
    """

    conn_type = "mail_smtp"
    default_conn_name = "mail_smtp_default"
    hook_name = "Send Email (SMTP)"
    protocol = "smtp"
    probe_description = "the server answered NOOP"

    def _open(self, settings: ServerSettings) -> smtplib.SMTP:
        context = build_ssl_context(settings.server_certificate)
        client: smtplib.SMTP
        if settings.security is Security.SSL:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            client.ehlo()
            if settings.security is Security.STARTTLS:
                if not client.has_extn("starttls"):
                    raise MailTLSError(
                        f"{settings.address} does not offer STARTTLS, so nothing was sent in "
                        "plain text; choose Security Method ssl (port 465) or none."
                    )
                client.starttls(context=context)
                client.ehlo()
            if settings.login:
                self._login(client, settings)
        except BaseException:
            self._abandon(client)
            raise
        return client

    @staticmethod
    def _login(client: smtplib.SMTP, settings: ServerSettings) -> None:
        if not client.has_extn("auth"):
            raise MailAuthError(
                f"{settings.address} does not offer authentication on this connection; choose "
                "Security Method starttls or ssl, or leave User Name empty."
            )
        try:
            client.login(settings.login, settings.password)
        except smtplib.SMTPAuthenticationError as err:
            raise MailAuthError(
                f"{settings.address} rejected the user name {settings.login!r} or its "
                "password; check User Name and Password."
            ) from err

    def _close(self, client: smtplib.SMTP) -> None:
        try:
            client.quit()
        except Exception:
            client.close()

    def _probe(self, client: smtplib.SMTP) -> None:
        code, reply = client.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
