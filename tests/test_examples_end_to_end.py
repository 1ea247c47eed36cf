"""The integrations in dags_examples/, end to end in real Airflow with Dovecot and aiosmtpd."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.smtp import SmtpServers
from tests.airflow_runs import task_result, task_states
from tests.conftest import REPO
from tests.fixtures_smtp import SmtpConnFactory

sys.path.insert(0, str(REPO / "dags_examples"))

INQUIRY = (
    b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n"
    b"To: info@example.com\r\nSubject: =?utf-8?q?Preise_f=C3=BCr_2027?=\r\n"
    b"Message-ID: <inq-1@example.org>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Was kostet die Lizenz?\r\n"
)
HTML_ONLY = (
    b"From: Ann Lee <ann@example.net>\r\nTo: info@example.com\r\nSubject: Demo please\r\n"
    b"Message-ID: <inq-2@example.net>\r\nDate: Sun, 29 Nov 2026 09:05:00 +0100\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><body><p>Can I see a <b>demo</b>?</p><script>x()</script></body></html>\r\n"
)


AIRFLOW_3_1 = importlib.metadata.version("apache-airflow").startswith("3.1.")


def example(name: str) -> Any:
    return importlib.import_module(name).dag


@pytest.fixture
def mailboxes(dovecot: Dovecot) -> Iterator[Dovecot]:
    for user in ("info", "support"):
        dovecot.clear(user)
    yield dovecot


@pytest.fixture
def connections(
    mail_connection: ConnFactory,
    mailboxes: Dovecot,
    certificate: Certificate,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
) -> dict[str, str]:
    return {
        "imap_conn_id": receive_connection(mail_connection, mailboxes, "imap", "ssl", certificate),
        "pop3_conn_id": receive_connection(
            mail_connection, mailboxes, "pop3", "starttls", certificate, user="support"
        ),
        "smtp_conn_id": smtp_connection(smtp.starttls),
    }


def test_reference_integration_forwards_new_info_mail_to_the_leads(
    airflow_db: object, mailboxes: Dovecot, connections: dict[str, str], smtp: SmtpServers
) -> None:
    mailboxes.deliver("info", [INQUIRY, HTML_ONLY])
    run = example("obtain_info_emails_to_leads").test(
        run_conf={**connections, "leads_email": "sales-team@example.com"}
    )
    assert task_states(run) == {
        "obtain_info_emails": "success",
        "map_to_leads": "success",
        "send_emails_to_leads": "success",
    }
    sent = smtp.starttls.messages
    assert [m.rcpt_tos for m in sent] == [("sales-team@example.com",)] * 2
    first, second = (m.parsed() for m in sent)
    assert first["Subject"] == "New lead: Preise für 2027"
    assert first["Reply-To"] == "Jürgen Müller <juergen@example.org>"
    assert first["From"] == "Info Desk <info@example.com>"
    assert "Jürgen Müller <juergen@example.org> wrote on 2026-11-29T09:00:00+01:00:" in (
        first.get_content()
    )
    assert "Was kostet die Lizenz?" in first.get_content()
    # The HTML-only message arrives as readable text, without its script.
    assert second["Subject"] == "New lead: Demo please"
    assert "Can I see a demo?" in second.get_content()
    assert "x()" not in second.get_content()
    result = task_result(run, "send_emails_to_leads")
    assert [r["to"] for r in result] == [["sales-team@example.com"]] * 2

    # Handed over means seen: the next run has nothing until new mail arrives.
    with mailboxes.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN") == []


def test_header_injection_from_a_strangers_email_fails_and_sends_nothing(
    airflow_db: object, mailboxes: Dovecot, connections: dict[str, str], smtp: SmtpServers
) -> None:
    """A mapping that copies an email's body into a header must not let it add headers."""
    from airflow.sdk import DAG

    from airflow_provider_mail.operators.map import MapOperator
    from airflow_provider_mail.operators.send import SendEmailOperator

    evil = (
        b"From: mallory@example.com\r\nTo: info@example.com\r\nSubject: hi\r\n"
        b"Message-ID: <evil@example.com>\r\n\r\nfine\r\nBcc: victim@example.org\r\n"
    )
    mailboxes.deliver("info", [INQUIRY, evil])
    dag: DAG = example("obtain_info_emails_to_leads")
    mapper = dag.get_task("map_to_leads")
    assert isinstance(mapper, MapOperator)
    original = dict(mapper.mapping)
    mapper.mapping = {**original, "subject": "{{ text }}"}
    try:
        run = dag.test(run_conf=connections)
    finally:
        mapper.mapping = original
    states = task_states(run)
    assert states["send_emails_to_leads"] == "failed"
    assert smtp.starttls.messages == []
    assert isinstance(dag.get_task("send_emails_to_leads"), SendEmailOperator)


def forget_answered(*addresses: str) -> None:
    """Delete the auto-acknowledge example's memory of whom it answered (Airflow Variables)."""
    from airflow.models import Variable

    from airflow_provider_mail.compat import variable_key

    for address in addresses:
        Variable.delete(variable_key(f"support_auto_acknowledge/answered/{address}"))


def test_auto_acknowledge_answers_each_sender_once_over_pop3(
    airflow_db: object, mailboxes: Dovecot, connections: dict[str, str], smtp: SmtpServers
) -> None:
    forget_answered("support@example.com")
    request = (
        b"From: Bob <bob@example.org>\r\nReply-To: bob.work@example.org\r\nTo: support@x\r\n"
        b"Subject: Printer on fire\r\nMessage-ID: <req-1@example.org>\r\n"
        b"References: <older@example.org>\r\n\r\nHelp!\r\n"
    )
    auto = (
        b"From: robot@example.org\r\nTo: support@x\r\nSubject: Automatic reply: away\r\n"
        b"Message-ID: <auto-1@example.org>\r\n\r\nI am away.\r\n"
    )
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@example.net>\r\nTo: support@x\r\n"
        b"Subject: Undelivered Mail\r\nMessage-ID: <bounce-1@example.net>\r\n\r\nNo.\r\n"
    )
    newsletter = (
        b"From: news@example.net\r\nTo: support@x\r\nSubject: Our news\r\n"
        b"List-Id: <news.example.net>\r\nMessage-ID: <news-1@example.net>\r\n\r\nNews\r\n"
    )
    itself = (
        b"From: support@example.com\r\nTo: support@example.com\r\nSubject: Note to self\r\n"
        b"Message-ID: <self-1@example.com>\r\n\r\nMemo\r\n"
    )
    mailboxes.deliver("support", [request, auto, bounce, newsletter, itself])
    dag = example("support_auto_acknowledge")
    conf = {**connections, "pop3_conn_id": connections["pop3_conn_id"]}
    run = dag.test(run_conf=conf)
    assert task_states(run)["send_acknowledgements"] == "success"
    [ack] = smtp.starttls.messages
    assert ack.rcpt_tos == ("bob.work@example.org",)
    parsed = ack.parsed()
    assert parsed["Subject"] == "Re: Printer on fire"
    assert parsed["From"] == "Support <support@example.com>"
    assert "Hello Bob," in parsed.get_content()
    assert parsed["In-Reply-To"] == "<req-1@example.org>"
    assert parsed["References"] == "<older@example.org> <req-1@example.org>"
    assert parsed["Auto-Submitted"] == "auto-replied"

    # Bob writes again within the period: no second acknowledgement; Carol gets hers.
    smtp.reset()
    again = request.replace(b"req-1", b"req-2").replace(b"fire", b"ice")
    carol = request.replace(b"req-1", b"req-3").replace(b"bob", b"carol").replace(b"Bob", b"Carol")
    mailboxes.deliver("support", [again, carol])
    dag.test(run_conf=conf)
    assert [(m.rcpt_tos, m.parsed()["Subject"]) for m in smtp.starttls.messages] == [
        (("carol.work@example.org",), "Re: Printer on fire")
    ]


def test_two_auto_responders_pointed_at_each_other_stop_after_one_reply_each(
    airflow_db: object,
    mail_connection: ConnFactory,
    mailboxes: Dovecot,
    certificate: Certificate,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
) -> None:
    """Two mailboxes answered by the same example DAG; what one sends lands in the other.

    aiosmtpd records what each responder sends; the test delivers it (IMAP APPEND) into the
    recipient's Dovecot mailbox, as a real mail system would, round after round.
    """
    mailbox_of = {"support@example.com": "support", "info@example.com": "info"}
    forget_answered(*mailbox_of)
    smtp_conn_id = smtp_connection(smtp.starttls)
    responders = {
        user: {
            "pop3_conn_id": receive_connection(
                mail_connection, mailboxes, "pop3", "starttls", certificate, user=user
            ),
            "smtp_conn_id": smtp_conn_id,
            "support_address": address,
        }
        for address, user in mailbox_of.items()
    }
    # A person at each side writes to the other side (no automatic headers).
    mailboxes.deliver(
        "support",
        [
            b"From: info@example.com\r\nTo: support@example.com\r\nSubject: Order 1\r\n"
            b"Message-ID: <order-1@example.com>\r\n\r\nWhere is it?\r\n"
        ],
    )
    mailboxes.deliver(
        "info",
        [
            b"From: support@example.com\r\nTo: info@example.com\r\nSubject: Ticket 9\r\n"
            b"Message-ID: <ticket-9@example.com>\r\n\r\nPlease confirm.\r\n"
        ],
    )
    dag = example("support_auto_acknowledge")
    sent_by: dict[str, int] = {"support": 0, "info": 0}
    waiting = {"support", "info"}  # mailboxes with mail their responder has not read
    rounds = 0
    while waiting:
        rounds += 1
        assert rounds <= 3, "the responders are still writing to each other"
        for user in sorted(waiting):
            smtp.reset()
            run = dag.test(run_conf=responders[user])
            assert task_states(run)["send_acknowledgements"] == "success"
            sent = list(smtp.starttls.messages)
            sent_by[user] += len(sent)
            relayed = set()
            for message in sent:
                for recipient in message.rcpt_tos:
                    mailboxes.deliver(mailbox_of[recipient], [message.data])
                    relayed.add(mailbox_of[recipient])
            waiting = (waiting - {user}) | relayed
    assert sent_by == {"support": 1, "info": 1}
    # Each side's one reply arrived at the other and was read, unanswered: the loop ended.
    assert rounds == 2


def test_hourly_digest_sends_one_email_listing_the_new_mail(
    airflow_db: object, mailboxes: Dovecot, connections: dict[str, str], smtp: SmtpServers
) -> None:
    mailboxes.deliver("info", [INQUIRY, HTML_ONLY], folder="Sales")
    dag = example("hourly_digest")
    conf = {**connections, "folder": "Sales", "digest_to": "team@example.com"}
    dag.test(run_conf=conf)
    [digest] = smtp.starttls.messages
    parsed = digest.parsed()
    assert parsed["Subject"] == "2 new message(s) in Sales"
    body = parsed.get_content()
    assert "Jürgen Müller <juergen@example.org>: Preise für 2027" in body
    assert "Ann Lee <ann@example.net>: Demo please" in body

    smtp.reset()
    quiet = dag.test(run_conf=conf)
    assert smtp.starttls.messages == []
    assert task_states(quiet)["send_digest"] == "success"


def test_asset_watcher_example_trigger_marks_what_it_emits_and_the_run_reads_it(
    airflow_db: object,
    mail_connection: ConnFactory,
    mailboxes: Dovecot,
    certificate: Certificate,
) -> None:
    receive_connection(
        mail_connection, mailboxes, "imap", "ssl", certificate, conn_id="mail_imap_default"
    )
    module = importlib.import_module("new_mail_asset_watcher")
    [watcher] = module.info_inbox.watchers
    trigger = watcher.trigger
    trigger.delay = 0.2
    mailboxes.deliver("info", [INQUIRY, HTML_ONLY])

    async def first_event() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(events.__anext__(), timeout=30)
            # The trigger marks after the event is out; let it take the next step.
            await asyncio.wait_for(_poll_once_more(events), timeout=5)
        finally:
            await events.aclose()
        return dict(event.payload)

    payload = asyncio.run(first_event())
    assert payload["status"] == "success"
    assert len(payload["uids"]) == 2
    assert "text" not in payload and "html" not in payload
    with mailboxes.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN") == []

    fetch = module.dag.get_task("fetch_new_mail").python_callable
    event = SimpleNamespace(extra={"from_trigger": True, "payload": payload})
    # What Airflow passes, keyed by the asset (Assets are not hashable before Airflow 3.2).
    events = _EventsOf(module.info_inbox, [event])
    records = fetch(triggering_asset_events=events, run_id="run-1")
    assert [r["subject"] for r in records] == ["Preise für 2027", "Demo please"]
    # A repeated event starts a second run: it gets nothing; a retry of the first, all.
    assert fetch(triggering_asset_events=events, run_id="run-2") == []
    again = fetch(triggering_asset_events=events, run_id="run-1")
    assert [r["subject"] for r in again] == ["Preise für 2027", "Demo please"]


class _EventsOf:
    """``triggering_asset_events`` with the events of one asset."""

    def __init__(self, asset: Any, events: list[Any]) -> None:
        self.asset, self.events = asset, events

    def __getitem__(self, asset: Any) -> list[Any]:
        assert asset is self.asset
        return self.events


async def _poll_once_more(events: Any) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(events.__anext__(), timeout=0.5)


def example_dags() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.models.dagbag import DagBag
    return DagBag(str(REPO / "dags_examples"))


def test_every_example_dag_parses_and_serializes() -> None:
    from airflow.serialization import serialized_objects

    # DagSerialization from Airflow 3.2; SerializedDAG before.
    serialization = getattr(serialized_objects, "DagSerialization", None) or (
        serialized_objects.SerializedDAG
    )
    bag = example_dags()
    assert bag.import_errors == {}
    assert set(bag.dags) == {
        "obtain_info_emails_to_leads",
        "support_auto_acknowledge",
        "hourly_mail_digest",
        "new_mail_asset_watcher",
        "invoices_to_storage",
    }
    for dag in bag.dags.values():
        serialization.serialize_dag(dag)


def test_every_example_dag_explains_itself() -> None:
    """A description, docs that say which connections it uses, titled and described params."""
    for dag in example_dags().dags.values():
        assert dag.description, dag.dag_id
        assert "Connections:" in (dag.doc_md or ""), dag.dag_id
        assert "What to change:" in (dag.doc_md or ""), dag.dag_id
        for name in dag.params:
            param = dag.params.get_param(name)
            assert param.schema.get("title"), (dag.dag_id, name)
            # Airflow 3.1's DagBag drops a Param's description (set: see the DAG files).
            assert param.description or AIRFLOW_3_1, (dag.dag_id, name)
    for waiting in ("obtain_info_emails_to_leads", "support_auto_acknowledge"):
        dag = example_dags().dags[waiting]
        assert "don't trigger it by hand" in dag.doc_md
        # @continuous stops after the first run on Airflow 3.2/3.3 (docs/deployment.md).
        assert dag.max_active_runs == 1 and "Continuous" not in type(dag.timetable).__name__
