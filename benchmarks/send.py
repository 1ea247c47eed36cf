"""Send 100 emails over SMTP (STARTTLS + AUTH): ours vs the official provider vs the floor.

Run from the repository root (starts and stops its own aiosmtpd)::

    python -m benchmarks.send                    # 100 emails, 3 rounds, 20 ms RTT
    python -m benchmarks.send --emails 50 --repeat 5 --delay 0.025
    python -m benchmarks.send --loopback-only --repeat 7

Contenders, each timed from connecting to the last reply (TLS and AUTH included):

- ``ours``: compose 100 emails with ``compose_email`` and ``SmtpHook(conn).send(emails)``:
  one session; the same with every email built by the email library (as before the
  fast path of :mod:`airflow_provider_mail.mail.outgoing_wire`); the same with each
  accepted email recorded in an Airflow Variable, as ``SendEmailOperator`` does so that
  a retry after a crash does not resend (SQLite here; in a task the write goes through
  the API server); then with ``max_connections=4``;
- ``official, one session``: ``airflow.providers.smtp``'s ``SmtpHook.send_email_smtp`` 100
  times inside one ``with hook:`` (it builds each MIME message itself);
- ``official, one session per email``: a new ``SmtpHook`` session per email, which is what
  100 ``EmailOperator`` tasks (or a mapped ``EmailOperator``) do;
- ``floor``: raw smtplib, one session, ``sendmail`` x100 of messages built beforehand.

Networks: ``loopback`` and ``20 ms RTT`` (:mod:`devtools.latency_proxy` in its own
process). The server is aiosmtpd in its own process, requiring STARTTLS before AUTH; every
client verifies its certificate (the official hook through ``SSL_CERT_FILE``, since it only
knows the system trust store).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import ssl
import subprocess
import sys
from email.message import EmailMessage
from typing import Any

from benchmarks.harness import (
    Contender,
    define_connection,
    machine_note,
    markdown_table,
    measure,
    network_key,
    prepare_airflow_home,
    wan_name,
)
from benchmarks.servers import (
    SMTP_PASSWORD,
    SMTP_USER,
    Certificate,
    SmtpServerProcess,
    bench_workdir,
)
from devtools.latency_proxy import ProxyProcess

LOOPBACK = "loopback"
SENDER = "sales@example.com"


def email_fields(count: int) -> list[dict[str, str]]:
    """What a mapper step hands the Send Email step: one lead per email."""
    return [
        {
            "from": f"Sales <{SENDER}>",
            "to": f"Lead {number} <lead{number}@example.org>",
            "subject": f"Votre devis n°{number}",
            "text": f"Bonjour,\n\nvoici votre devis n°{number}.\n\nL'équipe commerciale\n",
            "html": f"<p>Bonjour,</p><p>voici votre devis n°{number}.</p>",
        }
        for number in range(count)
    ]


class Setup:
    """Connections and contenders for one run."""

    def __init__(self, server: SmtpServerProcess, certificate: Certificate, count: int) -> None:
        self.server = server
        self.certificate = certificate
        self.count = count
        self.fields = email_fields(count)
        self.ports: dict[str, int] = {}
        self.floor_messages = [self._floor_message(fields) for fields in self.fields]

    def define(self, network: str, port: int) -> None:
        self.ports[network] = port
        define_connection(
            f"bench_ours_smtp_{network_key(network)}",
            "mail_smtp",
            port=port,
            login=SMTP_USER,
            password=SMTP_PASSWORD,
            security="starttls",
            server_certificate=self.certificate.pem,
            timeout=60,
        )
        define_connection(
            f"bench_official_smtp_{network_key(network)}",
            "smtp",
            port=port,
            login=SMTP_USER,
            password=SMTP_PASSWORD,
            disable_ssl=True,  # no implicit TLS: STARTTLS on the plain port
            disable_tls=False,
            ssl_context="default",
            retry_limit=0,  # a retry would hide a failure from the count check
            timeout=60,
        )

    def verify(self) -> None:
        """The server received exactly one batch; reset for the next run."""
        received = self.server.count()
        self.server.reset()
        if received != self.count:
            raise RuntimeError(f"the server received {received} emails, expected {self.count}")

    def ours(self, network: str, max_connections: int = 1) -> None:
        from airflow_provider_mail.hooks.smtp import SmtpHook
        from airflow_provider_mail.mail.compose import compose_email

        emails = [compose_email(fields, item=index) for index, fields in enumerate(self.fields)]
        SmtpHook(f"bench_ours_smtp_{network_key(network)}").send(
            emails, max_connections=max_connections
        )

    def ours_library(self, network: str) -> None:
        """``ours`` with every email built by the email library, as before the fast path."""
        from airflow_provider_mail.mail import compose, outgoing_wire

        written, simple = compose._written, outgoing_wire.simple_addresses
        compose._written = lambda *args: None  # type: ignore[assignment]
        outgoing_wire.simple_addresses = lambda texts: None  # type: ignore[assignment]
        try:
            self.ours(network)
        finally:
            compose._written, outgoing_wire.simple_addresses = written, simple

    def ours_recorded(self, network: str) -> None:
        """What ``SendEmailOperator`` does: each accepted email recorded in a Variable."""
        import uuid

        from airflow_provider_mail.hooks.smtp import SmtpHook
        from airflow_provider_mail.keyvalue import VariableStore
        from airflow_provider_mail.mail.compose import compose_email
        from airflow_provider_mail.operators.send import SentRecord
        from airflow_provider_mail.storage import TaskLedger

        emails = [compose_email(fields, item=index) for index, fields in enumerate(self.fields)]
        ledger = TaskLedger(
            VariableStore(),
            "sent",
            dag_id="bench",
            task_id="send",
            run_id=str(uuid.uuid4()),
            map_index=None,
        )
        SmtpHook(f"bench_ours_smtp_{network_key(network)}").send(
            emails, progress=SentRecord(ledger, {}, range(len(emails)))
        )

    def ours_parallel(self, network: str) -> None:
        self.ours(network, max_connections=4)

    def _official_send(self, hook: Any, fields: dict[str, str]) -> None:
        hook.send_email_smtp(
            to=fields["to"],
            subject=fields["subject"],
            html_content=fields["html"],
            from_email=fields["from"],
        )

    def official_one_session(self, network: str) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook as OfficialSmtpHook

        with OfficialSmtpHook(f"bench_official_smtp_{network_key(network)}") as hook:
            for fields in self.fields:
                self._official_send(hook, fields)

    def official_session_per_email(self, network: str) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook as OfficialSmtpHook

        for fields in self.fields:
            with OfficialSmtpHook(f"bench_official_smtp_{network_key(network)}") as hook:
                self._official_send(hook, fields)

    @staticmethod
    def _floor_message(fields: dict[str, str]) -> bytes:
        message = EmailMessage()
        message["From"] = fields["from"]
        message["To"] = fields["to"]
        message["Subject"] = fields["subject"]
        message.set_content(fields["text"])
        message.add_alternative(fields["html"], subtype="html")
        return message.as_bytes()

    def floor(self, network: str) -> None:
        context = ssl.create_default_context(cafile=str(self.certificate.cert_path))
        with smtplib.SMTP("localhost", self.ports[network], timeout=60) as client:
            client.starttls(context=context)
            client.login(SMTP_USER, SMTP_PASSWORD)
            for number, message in enumerate(self.floor_messages):
                client.sendmail(SENDER, [f"lead{number}@example.org"], message)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (median)")
    parser.add_argument("--delay", type=float, default=0.010, help="one-way delay, seconds")
    parser.add_argument(
        "--loopback-only", action="store_true", help="skip the 20 ms RTT rows (minutes)"
    )
    args = parser.parse_args(argv)

    prepare_airflow_home()
    # The recorded contender writes Variables: a migrated (SQLite) metadata database.
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    wan = wan_name(args.delay)
    with (
        bench_workdir() as (_workdir, certificate),
        SmtpServerProcess("starttls", certificate) as server,
        ProxyProcess(server.port, delay=args.delay) as proxy,
    ):
        # The official hook trusts only the system store; this makes it trust our cert.
        os.environ["SSL_CERT_FILE"] = str(certificate.cert_path)
        setup = Setup(server, certificate, args.emails)
        setup.define(LOOPBACK, server.port)
        setup.define(wan, proxy.port)
        contenders = [
            Contender("ours: compose + `SmtpHook.send`, one session", setup.ours),
            Contender(
                "ours, emails built by the email library (before: no fast path)",
                setup.ours_library,
            ),
            Contender(
                "ours: as `SendEmailOperator` sends (one Variable write per email accepted)",
                setup.ours_recorded,
            ),
            Contender("ours: compose + `SmtpHook.send(max_connections=4)`", setup.ours_parallel),
            Contender(
                "official: `SmtpHook.send_email_smtp` x N in one session",
                setup.official_one_session,
            ),
            Contender(
                "official: one session per email (like `EmailOperator`)",
                setup.official_session_per_email,
            ),
            Contender("floor: smtplib, one session, `sendmail` x N", setup.floor, is_floor=True),
        ]
        for contender in contenders:
            contender.verify = setup.verify
        networks = [LOOPBACK] if args.loopback_only else [LOOPBACK, wan]
        measure(contenders, networks, args.repeat)
        print(f"\n### Send {args.emails} emails (SMTP, STARTTLS + AUTH, median of {args.repeat})\n")
        print(markdown_table(contenders, networks))
        print(
            "\nEvery contender connects, negotiates TLS (verified), authenticates and sends "
            "within its time; the floor's messages are built before the clock starts. "
            f"{machine_note()}"
        )


if __name__ == "__main__":
    main()
