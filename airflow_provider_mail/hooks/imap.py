"""ImapHook: one authenticated IMAP session (imapclient)."""

from __future__ import annotations

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from airflow_provider_mail.exceptions import MailAuthError, MailTLSError
from airflow_provider_mail.hooks.base import MailHook
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.tls import Security, build_ssl_context


class ImapHook(MailHook[IMAPClient]):
    """Receive email over IMAP (connection type ``mail_imap``).

    :param conn_id: a ``mail_imap`` connection, default ``mail_imap_default``.
    """

    conn_type = "mail_imap"
    default_conn_name = "mail_imap_default"
    hook_name = "Receive Email (IMAP)"
    protocol = "imap"
    probe_description = "selected the inbox"

    def _open(self, settings: ServerSettings) -> IMAPClient:
        context = build_ssl_context(settings.server_certificate)
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security is Security.SSL,
            ssl_context=context,
            timeout=settings.timeout,
        )
        try:
            if settings.security is Security.STARTTLS:
                if not client.has_capability("STARTTLS"):
                    raise MailTLSError(
                        f"{settings.address} does not offer STARTTLS, so nothing was sent in "
                        "plain text; choose Security Method ssl (port 993) or none."
                    )
                client.starttls(context)
            if settings.login:
                try:
                    client.login(settings.login, settings.password)
                except LoginError as err:
                    raise MailAuthError(
                        f"{settings.address} rejected the user name {settings.login!r} or its "
                        "password; check User Name and Password."
                    ) from err
        except BaseException:
            self._abandon(client)
            raise
        return client

    def _close(self, client: IMAPClient) -> None:
        try:
            client.logout()
        except Exception:
            client.shutdown()

    def _probe(self, client: IMAPClient) -> None:
        client.select_folder("INBOX", readonly=True)
