"""Issue 15's mailbox actions and examples in a real deployment, through kill -9.

One deployment (PostgreSQL, api-server, scheduler, dag-processor, two triggerers,
LocalExecutor; ``devtools/airflow_deployment.py``) runs, unpaused, each on a Dovecot user
of its own:

- ``deployment_after_receive_{move,delete,leave_unread}`` (``tests/deployment/dags/``):
  receive -> map -> forward over SMTP, with ``after_receive`` ``move`` (to ``Processed``),
  ``delete`` and ``leave_unread``;
- ``invoices_to_storage`` (the example, its storage URL a ``file://`` folder of the test);
- two copies of ``support_auto_acknowledge`` (the example, each with its own POP3 inbox
  and address), pointed at each other: what one sends, the test delivers into the other's
  inbox, as a mail system would.

Mail arrives in three waves. In the second, the triggerer holding the most waiting
sensors is killed (-9), then the task processes are killed (-9) at the dangerous
points: ``move`` and ``delete`` after Airflow recorded the sensor's success and before the
action (the sensor's success callback; the action stays owed, and a later run of the task
must do it), ``leave_unread`` in the middle of its hand-over (its retry delivers). The
third shows the runs after the kills keep delivering. At the end every email was
forwarded exactly once and every mailbox is in its expected state.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import FLAGGED, SEEN

from devtools.airflow_deployment import Deployment
from devtools.certs import Certificate
from devtools.connections import mailbox_connection_variable, smtp_connection_variable
from devtools.dovecot import Dovecot
from devtools.postgres import Postgres
from devtools.smtp import SmtpServers
from tests.conftest import REPO
from tests.deployment.running import INJECT, MARKS, airflow_home, run, wait_until

MODES_DAGS = Path(__file__).resolve().parent / "dags" / "after_receive_modes.py"
MODES = ("move", "delete", "leave_unread")
INVOICES = "invoices_to_storage"
RESPONDERS = {  # DAG id -> (Dovecot user, its support address)
    "support_auto_acknowledge_a": ("supporta", "support-a@example.com"),
    "support_auto_acknowledge_b": ("supportb", "support-b@example.com"),
}
USERS = {"move": "moved", "delete": "deleted", "leave_unread": "unread", INVOICES: "invoices"}

pytestmark = MARKS


def dag_id(mode: str) -> str:
    return f"deployment_after_receive_{mode}"


def message(mode: str, wave: int, number: int) -> bytes:
    return (
        f"From: Sender {wave}-{number} <sender{wave}{number}@example.org>\r\n"
        f"To: {mode}@example.com\r\nSubject: {mode} wave {wave} message {number}\r\n"
        f"Message-ID: <{mode}-{wave}-{number}@example.org>\r\n"
        f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nBody {wave}-{number}.\r\n"
    ).encode()


def pdf(name: str) -> bytes:
    """A small PDF-like file whose bytes differ per name (every byte value appears)."""
    return b"%PDF-1.4\n" + name.encode() + bytes(range(256)) * 20 + b"\n%%EOF\n"


def invoice(number: int, files: list[str], sender: str = "billing@vendor.example") -> bytes:
    parts = b""
    for name in files:
        encoded = base64.encodebytes(pdf(name)).replace(b"\n", b"\r\n")
        parts += (
            f'--b\r\nContent-Type: application/pdf; name="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
        ).encode() + encoded
    return (
        (
            f"From: Vendor <{sender}>\r\nTo: ap@example.com\r\nSubject: Invoice {number}\r\n"
            f"Message-ID: <invoice-{number}@vendor.example>\r\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nThe invoice is attached.\r\n"
        ).encode()
        + parts
        + b"--b--\r\n"
    )


def example_copy(source: str, target: Path, replacements: dict[str, str]) -> Path:
    """An example DAG file with other defaults, as a user copies and adapts it."""
    text = (REPO / "dags_examples" / source).read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not once in {source}"
        text = text.replace(old, new)
    target.write_text(text)
    return target


class Mail:
    """What went into the mailboxes, what came out at the SMTP server, and the relay
    between the two responders."""

    def __init__(self, dovecot: Dovecot, smtp: SmtpServers) -> None:
        self.dovecot = dovecot
        self.smtp = smtp
        self.sent: dict[str, list[str]] = {mode: [] for mode in MODES}
        self.flags: dict[str, set[bytes]] = {}  # leave_unread: subject -> flags given
        self.forwarded: dict[str, list[str]] = {mode: [] for mode in MODES}
        self.replies: dict[str, list[str]] = {dag: [] for dag in RESPONDERS}
        self.seen = 0

    def deliver(self, wave: int, count: int) -> None:
        for mode in MODES:
            for number in range(count):
                flags: tuple[bytes, ...] = ()
                if mode == "leave_unread":  # a person's flags, which must stay as they are
                    flags = ((FLAGGED,), (SEEN,), ())[number % 3]
                raw = message(mode, wave, number)
                self.dovecot.deliver(
                    USERS[mode], [raw], flags=tuple(flag.decode() for flag in flags)
                )
                subject = f"{mode} wave {wave} message {number}"
                self.sent[mode].append(subject)
                self.flags[subject] = set(flags)

    def collect(self) -> None:
        """Sort new SMTP messages by recipient; relay what one responder sent the other."""
        messages = self.smtp.starttls.messages
        inbox_of = {address: user for user, address in RESPONDERS.values()}
        responder_of = {address: dag for dag, (_user, address) in RESPONDERS.items()}
        for received in messages[self.seen :]:
            parsed = received.parsed()
            (recipient,) = received.rcpt_tos
            mode = recipient.removesuffix("@leads.example")
            if mode in self.forwarded:
                self.forwarded[mode].append(str(parsed["Subject"]))
                continue
            sender = str(parsed["From"]).split("<")[-1].rstrip(">")
            self.replies[responder_of[sender]].append(
                f"{parsed['Subject']} (In-Reply-To {parsed['In-Reply-To']}, "
                f"Auto-Submitted {parsed['Auto-Submitted']})"
            )
            if recipient in inbox_of:
                self.dovecot.deliver(inbox_of[recipient], [received.data])
        self.seen = len(messages)

    def all_forwarded(self) -> bool:
        self.collect()
        return all(set(self.sent[mode]) <= set(self.forwarded[mode]) for mode in MODES)


@pytest.fixture
def deployment(
    postgres: Postgres,
    dovecot: Dovecot,
    certificate: Certificate,
    smtp: SmtpServers,
    tmp_path: Path,
) -> Iterator[Deployment]:
    users = [*USERS.values(), *(user for user, _address in RESPONDERS.values())]
    # Dovecot re-reads its passwd file when the file's mtime (whole seconds) changed since
    # its last read: all users are written a second after any earlier login, before the next.
    time.sleep(1.1)
    for user in users:
        dovecot.add_user(user, f"{user}-secret")
    for user in users:
        dovecot.clear(user)
    for user in (USERS["move"], USERS[INVOICES]):
        with dovecot.client(user) as client:
            client.create_folder("Processed")
            client.logout()

    connections = dict(
        [
            *(
                mailbox_connection_variable(
                    f"mail_imap_{mode}", dovecot, "imap", USERS[mode], certificate
                )
                for mode in MODES
            ),
            mailbox_connection_variable(
                "mail_imap_default", dovecot, "imap", USERS[INVOICES], certificate
            ),
            *(
                mailbox_connection_variable(f"mail_pop3_{user}", dovecot, "pop3", user, certificate)
                for user, _address in RESPONDERS.values()
            ),
            smtp_connection_variable("mail_smtp_default", smtp.starttls, certificate),
        ]
    )
    sources = tmp_path / "dag-sources"
    sources.mkdir()
    storage = tmp_path / "invoices"
    dags = [
        MODES_DAGS,
        example_copy(
            f"{INVOICES}.py",
            sources / f"{INVOICES}.py",
            {'"file:///tmp/invoices"': f'"file://{storage}"'},
        ),
        *(
            example_copy(
                "support_auto_acknowledge.py",
                sources / f"{dag}.py",
                {
                    'dag_id="support_auto_acknowledge"': f'dag_id="{dag}"',
                    '"mail_pop3_default"': f'"mail_pop3_{user}"',
                    '"support@example.com"': f'"{address}"',
                },
            )
            for dag, (user, address) in RESPONDERS.items()
        ),
    ]
    yield from run(
        Deployment(
            airflow_home(tmp_path),
            postgres.url,
            connections,
            dags,
            pythonpath=[INJECT],
            triggerer_hostname_callable="deployment_hostname.hostname",
        )
    )


def waiting_sensors(postgres: Postgres) -> list[tuple[str, str]]:
    """(DAG id, triggerer) of each of the three modes' sensors waiting in a triggerer."""
    rows = postgres.query(
        "select ti.dag_id, job.hostname from trigger join job on job.id = trigger.triggerer_id "
        "join task_instance ti on ti.trigger_id = trigger.id where ti.dag_id like %s",
        ("deployment_after_receive_%",),
    )
    return [(str(dag), str(host)) for dag, host in rows]


def busiest_triggerer(postgres: Postgres) -> tuple[str, int]:
    """The triggerer running the most of the modes' waiting sensors (its job's host name),
    and how many it runs."""
    return Counter(host for _dag, host in waiting_sensors(postgres)).most_common()[0]


def handed_over_in_a_finished_run(postgres: Postgres, dag: str, subject: str) -> bool:
    """A successful run of ``dag`` whose sensor handed over the message ``subject``."""
    rows = postgres.query(
        "select count(*) from xcom x join dag_run r on r.dag_id = x.dag_id "
        "and r.run_id = x.run_id where x.dag_id = %s and x.key = 'return_value' "
        "and x.task_id = 'new_support_requests' and r.state = 'success' "
        "and x.value::text like %s",
        (dag, f"%{subject}%"),
    )
    return int(rows[0][0]) > 0


def kill_when_paused(pid_files: list[Path], pause_files: list[Path], mail: Mail) -> None:
    """SIGKILL each task process as soon as it pauses at its point."""
    waiting = dict(zip(pid_files, pause_files, strict=True))

    def kill_paused() -> bool:
        for pid_file, pause_file in list(waiting.items()):
            if pid_file.exists():
                pause_file.unlink()
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                del waiting[pid_file]
        return not waiting

    wait_until("the task processes pause at their points", kill_paused, 240, mail)


def task_logs(home: Path, dag: str) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in (home / "logs").rglob(f"dag_id={dag}/**/*.log")
    )


def test_mailbox_actions_and_examples_keep_running_through_kills(
    postgres: Postgres,
    deployment: Deployment,
    dovecot: Dovecot,
    smtp: SmtpServers,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    mail = Mail(dovecot, smtp)

    # Wave 1, as soon as Airflow runs (the first runs find it at their first poll): three
    # messages per mode, an invoice with two PDFs and a stranger's mail with one, and at
    # each responder a person's mail from the other responder's address plus an automatic
    # one (never answered).
    mail.deliver(1, 3)
    dovecot.deliver(
        USERS[INVOICES],
        [invoice(1, ["inv-1a.pdf", "inv-1b.pdf"]), invoice(7, ["x.pdf"], "someone@example.org")],
    )
    (user_a, address_a), (user_b, address_b) = RESPONDERS.values()
    dovecot.deliver(
        user_a,
        [
            f"From: {address_b}\r\nTo: {address_a}\r\nSubject: Order 1\r\n"
            f"Message-ID: <order-1@example.com>\r\n\r\nWhere is it?\r\n".encode(),
            f"From: robot@example.org\r\nTo: {address_a}\r\nSubject: Report\r\n"
            f"Auto-Submitted: auto-generated\r\n\r\nNightly report.\r\n".encode(),
        ],
    )
    dovecot.deliver(
        user_b,
        [
            f"From: {address_a}\r\nTo: {address_b}\r\nSubject: Ticket 9\r\n"
            f"Message-ID: <ticket-9@example.com>\r\n\r\nPlease confirm.\r\n".encode(),
            f"From: Mail Delivery System <MAILER-DAEMON@example.net>\r\nTo: {address_b}\r\n"
            f"Subject: Undelivered Mail\r\n\r\nBounce.\r\n".encode(),
        ],
    )
    wait_until("wave 1 is forwarded", mail.all_forwarded, 300, mail)
    phases = [f"wave 1 {time.monotonic() - started:.0f} s"]

    # Wave 2: the triggerer holding the most waiting sensors is killed (-9); the other takes
    # their triggers over once the dead one misses its heartbeats. Then task processes are
    # killed (-9) at the dangerous points. move and delete: Airflow has recorded the
    # sensor's success, the action has not run (it stays owed to a later run of the task).
    # leave_unread: mid-hand-over (taken into the handed-over set, not read); its retry
    # delivers.
    wave_started = time.monotonic()
    wait_until(
        "the three modes' next runs wait in the triggerers",
        lambda: len(waiting_sensors(postgres)) == len(MODES),
        180,
        mail,
    )
    killed, holding = busiest_triggerer(postgres)
    deployment.kill(killed)
    pauses = [
        deployment.pause_point("before-action", dag_id("move")),
        deployment.pause_point("before-action", dag_id("delete")),
        deployment.pause_point("hand-over", dag_id("leave_unread")),
    ]
    for pause in pauses:
        pause.touch()
    mail.deliver(2, 3)
    dovecot.deliver(USERS[INVOICES], [invoice(2, ["inv-2.pdf"])])
    kill_when_paused([Path(f"{pause}.pid") for pause in pauses], pauses, mail)
    deployment.restart(killed)
    wait_until("wave 2 is forwarded", mail.all_forwarded, 240, mail)
    phases.append(f"wave 2 {time.monotonic() - wave_started:.0f} s")

    # Wave 3: the runs after the kills deliver, and settle what the killed ones owed.
    wave_started = time.monotonic()
    mail.deliver(3, 2)
    wait_until("wave 3 is forwarded", mail.all_forwarded, 180, mail)

    def settled() -> bool:
        return not dovecot.flags_by_subject(USERS["move"]) and not dovecot.flags_by_subject(
            USERS["delete"]
        )

    wait_until("the owed moves and deletes are done", settled, 120, mail)
    wait_until(
        "the invoices are filed and moved",
        lambda: len(dovecot.flags_by_subject(USERS[INVOICES], "Processed")) == 2,
        120,
        mail,
    )
    wait_until(
        "each responder has read the other's acknowledgement",
        lambda: (
            handed_over_in_a_finished_run(postgres, "support_auto_acknowledge_a", "Re: Ticket 9")
            and handed_over_in_a_finished_run(postgres, "support_auto_acknowledge_b", "Re: Order 1")
        ),
        180,
        mail,
    )
    time.sleep(5)  # a duplicate would arrive now
    mail.collect()
    phases.append(f"wave 3 and the examples' ends {time.monotonic() - wave_started:.0f} s")

    # Counted first and printed, then asserted.
    summary = []
    for mode in MODES:
        received = Counter(mail.forwarded[mode])
        summary.append(
            f"{dag_id(mode)}: sent {len(mail.sent[mode])}, received {sum(received.values())}, "
            f"duplicates {sum(received.values()) - len(received)}, "
            f"lost {len(set(mail.sent[mode]) - set(received))}"
        )
    storage = tmp_path / "invoices"
    expected_pdfs = ["inv-1a.pdf", "inv-1b.pdf", "inv-2.pdf"]
    filed = Counter(path.name for path in storage.rglob("*.pdf"))
    summary.append(
        f"{INVOICES}: attachments sent {len(expected_pdfs)} (in 2 vendor emails), "
        f"received in storage {sum(filed.values())}, "
        f"duplicates {sum(filed.values()) - len(filed)}, "
        f"lost {len(set(expected_pdfs) - set(filed))}"
    )
    for dag, replies in mail.replies.items():
        summary.append(
            f"{dag}: 1 person's mail to answer, acknowledgements sent {len(replies)} "
            f"({'; '.join(replies)})"
        )
    print(
        f"\ndeployment (LocalExecutor, PostgreSQL, 2 triggerers; killed {killed} holding "
        f"{holding} of the modes' 3 waiting sensors, then the task processes of move and "
        "delete after their success before the action and of leave_unread mid-hand-over; "
        f"{', '.join(phases)}; {time.monotonic() - started:.0f} s after start-up):\n  "
        + "\n  ".join(summary)
    )

    for mode in MODES:
        assert sorted(mail.forwarded[mode]) == sorted(mail.sent[mode]), mode  # each once

    # The mailboxes: moved once each with \Seen, deleted, or untouched.
    with dovecot.client(USERS["move"]) as client:
        client.select_folder("Processed", readonly=True)
        in_processed = len(client.search("ALL"))
        client.logout()
    assert in_processed == len(mail.sent["move"])
    moved = dovecot.flags_by_subject(USERS["move"], "Processed")
    assert moved == {subject: {SEEN} for subject in mail.sent["move"]}
    assert dovecot.flags_by_subject(USERS["delete"]) == {}
    unread = dovecot.flags_by_subject(USERS["leave_unread"])
    assert unread == {subject: mail.flags[subject] for subject in mail.sent["leave_unread"]}

    # The killed runs' actions were done by later runs of the task (settled, logged).
    for mode in ("move", "delete"):
        logs = task_logs(deployment.home, dag_id(mode))
        assert re.search(rf"Did the {mode} of \d+ message\(s\) that run", logs), mode

    # The invoices: every PDF once, byte for byte; the vendor's mail moved, the other kept.
    assert filed == dict.fromkeys(expected_pdfs, 1)
    for path in storage.rglob("*.pdf"):
        assert path.read_bytes() == pdf(path.name)
    assert dovecot.flags_by_subject(USERS[INVOICES], "Processed") == {
        "Invoice 1": {SEEN},
        "Invoice 2": {SEEN},
    }
    assert dovecot.flags_by_subject(USERS[INVOICES]) == {"Invoice 7": set()}

    # The responders: one acknowledgement each, in the thread, marked automatic; the loop
    # stopped, and neither the automatic report nor the bounce was answered.
    assert mail.replies == {
        "support_auto_acknowledge_a": [
            "Re: Order 1 (In-Reply-To <order-1@example.com>, Auto-Submitted auto-replied)"
        ],
        "support_auto_acknowledge_b": [
            "Re: Ticket 9 (In-Reply-To <ticket-9@example.com>, Auto-Submitted auto-replied)"
        ],
    }
