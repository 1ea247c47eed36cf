"""Pop3Hook: one authenticated POP3 session (poplib)."""

from __future__ import annotations

import poplib

from airflow_provider_mail.exceptions import MailAuthError, MailTLSError
from airflow_provider_mail.hooks.base import MailHook
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.tls import Security, build_ssl_context


class Pop3Hook(MailHook[poplib.POP3]):
    """Receive email over POP3 (connection type ``mail_pop3``).

    :param conn_id: a ``mail_pop3`` connection, default ``mail_pop3_default``.
    """

    conn_type = "mail_pop3"
    default_conn_name = "mail_pop3_default"
    hook_name = "Receive Email (POP3)"
    protocol = "pop3"
    probe_description = "read the mailbox status (STAT)"

    def _open(self, settings: ServerSettings) -> poplib.POP3:
        context = build_ssl_context(settings.server_certificate)
        client: poplib.POP3
        if settings.security is Security.SSL:
            client = poplib.POP3_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = poplib.POP3(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.security is Security.STARTTLS:
                if "STLS" not in _capabilities(client):
                    raise MailTLSError(
                        f"{settings.address} does not offer STARTTLS (STLS), so nothing was sent "
                        "in plain text; choose Security Method ssl (port 995) or none."
                    )
                client.stls(context)
            if settings.login:
                try:
                    client.user(settings.login)
                    client.pass_(settings.password)
                except poplib.error_proto as err:
                    raise MailAuthError(
                        f"{settings.address} rejected the user name {settings.login!r} or its "
                        "password; check User Name and Password."
                    ) from err
        except BaseException:
            self._abandon(client)
            raise
        return client

    def _close(self, client: poplib.POP3) -> None:
        try:
            client.quit()
        except Exception:
            client.close()

    def _probe(self, client: poplib.POP3) -> None:
        client.stat()


def _capabilities(client: poplib.POP3) -> dict[str, list[str]]:
    try:
        return client.capa()
    except poplib.error_proto:
        return {}
