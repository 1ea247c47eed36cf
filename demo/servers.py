"""The demo's local mail servers: Dovecot (IMAP/POP3) and an SMTP server that delivers into it.

Both listen on 127.0.0.1 only and use one throw-away self-signed certificate for
``localhost``. The SMTP server requires STARTTLS and AUTH like a real submission server,
and delivers each message into the Dovecot mailbox named by the recipient's local part
(``leads@example.com`` -> user ``leads``), so the demo shows what a lead really received
by reading the leads' inbox over IMAP, exactly as a mail client would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from devtools.certs import Certificate, free_port, make_certificate
from devtools.dovecot import Dovecot
from devtools.smtp import SMTP_PASSWORD, SMTP_USER, Recorder, server_tls_context

# Mailbox users of the demo and their passwords (throw-away, like everything here).
USERS = {
    "info": "info-Secret-1",
    "leads": "leads-Secret-2",
    "support": "support-Secret-3",
}
MAIL_DOMAIN = "example.com"

DeliveryCallback = Callable[[str, bytes], None]


def with_form_defaults(conn_type: str, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` plus the default of every form field it lacks.

    Airflow's edit form shows only the extra fields a saved connection has (one created
    through the form has them all); the demo's connections come from the CLI.
    """
    from airflow_provider_mail.get_provider_info import get_provider_info

    for connection_type in get_provider_info()["connection-types"]:
        if connection_type["connection-type"] == conn_type:
            for name, field in connection_type["conn-fields"].items():
                if "default" in field["schema"]:
                    extra.setdefault(name, field["schema"]["default"])
    return extra


class DeliveringRecorder(Recorder):
    """Authenticates and records like the test server, then delivers into Dovecot."""

    def __init__(self, dovecot: Dovecot, on_delivery: DeliveryCallback | None = None) -> None:
        super().__init__(implicit_tls=False)
        self.dovecot = dovecot
        self.on_delivery = on_delivery
        self.undeliverable: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        content = envelope.original_content or b""
        for rcpt in envelope.rcpt_tos:
            user = rcpt.rpartition("@")[0].lower()
            if user not in self.dovecot.users:
                # Accepted and recorded, but there is no such local mailbox to put it in.
                self.undeliverable.append(rcpt)
                continue
            # What a real delivery agent prepends: the envelope, visible to the reader.
            headers = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpt}\r\n"
            raw = headers.encode() + content
            # imapclient blocks: keep it off aiosmtpd's event loop.
            await asyncio.to_thread(self.dovecot.deliver, user, [raw])
            if self.on_delivery is not None:
                self.on_delivery(rcpt, raw)
        return answer


class DeliveringSmtpServer:
    """aiosmtpd on 127.0.0.1 with STARTTLS required and AUTH, delivering into Dovecot."""

    def __init__(
        self,
        certificate: Certificate,
        dovecot: Dovecot,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.handler = DeliveringRecorder(dovecot, on_delivery)
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            authenticator=self.handler.authenticate,
            auth_require_tls=True,
            tls_context=server_tls_context(certificate),
            require_starttls=True,
        )

    def start(self) -> DeliveringSmtpServer:
        # aiosmtpd logs every SMTP command at INFO; the demo prints what matters itself.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        # Each delivery logs out of Dovecot; imapclient reports a harmless unclean close.
        logging.getLogger("imapclient").setLevel(logging.WARNING)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class MailServers:
    """Certificate, Dovecot and the SMTP server of one demo run, under ``root``."""

    root: Path
    certificate: Certificate
    dovecot: Dovecot
    smtp: DeliveringSmtpServer

    @classmethod
    def start(cls, root: Path, on_delivery: DeliveryCallback | None = None) -> MailServers:
        """Start everything; on any failure, stop what was already started."""
        certificate = make_certificate(root / "certs")
        dovecot = Dovecot(root / "dovecot", certificate, users=dict(USERS)).start()
        try:
            smtp = DeliveringSmtpServer(certificate, dovecot, on_delivery).start()
        except BaseException:
            dovecot.stop()
            raise
        return cls(root=root, certificate=certificate, dovecot=dovecot, smtp=smtp)

    def stop(self) -> None:
        try:
            self.smtp.stop()
        finally:
            self.dovecot.stop()

    def connections(
        self, imap_id: str, smtp_id: str, pop3_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Airflow connections (id -> JSON object) for the info inbox and the SMTP server.

        The host is ``localhost`` because the throw-away certificate names it: TLS stays
        fully verified, against the pasted certificate instead of the system trust store.
        """
        tls = {"server_certificate": self.certificate.pem, "timeout": 10}
        result: dict[str, dict[str, Any]] = {
            imap_id: {
                "conn_type": "mail_imap",
                "description": "Demo: info@example.com's inbox (local Dovecot, IMAP over TLS)",
                "host": "localhost",
                "port": self.dovecot.imaps_port,
                "login": "info",
                "password": USERS["info"],
                "extra": {"security": "ssl", **tls},
            },
            smtp_id: {
                "conn_type": "mail_smtp",
                "description": "Demo: local SMTP server (STARTTLS + AUTH), delivers to Dovecot",
                "host": "localhost",
                "port": self.smtp.port,
                "login": SMTP_USER,
                "password": SMTP_PASSWORD,
                "extra": {"security": "starttls", **tls},
            },
        }
        if pop3_id is not None:
            result[pop3_id] = {
                "conn_type": "mail_pop3",
                "description": "Demo: support@example.com's inbox (local Dovecot, POP3 STARTTLS)",
                "host": "localhost",
                "port": self.dovecot.pop3_port,
                "login": "support",
                "password": USERS["support"],
                "extra": {"security": "starttls", **tls},
            }
        for connection in result.values():
            connection["extra"] = with_form_defaults(connection["conn_type"], connection["extra"])
        return result

    def inbox(self, user: str) -> list[EmailMessage]:
        """Every message in ``user``'s inbox, oldest first, without marking them seen."""
        with self.dovecot.client(user) as client:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            client.logout()
        messages: list[EmailMessage] = []
        for uid in sorted(fetched):
            parsed = email.message_from_bytes(fetched[uid][b"BODY[]"], policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            messages.append(parsed)
        return messages
