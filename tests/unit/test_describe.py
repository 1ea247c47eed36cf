"""The one-line log descriptions: what a sensor waits for, what it received and sent."""

from __future__ import annotations

from airflow_provider_mail.mail.describe import received_line, sent_line, shown, waiting_line
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.tls import Security

POP3 = ServerSettings("pop3", "pop.example.com", 995, Security.SSL)


def test_waiting_line_for_every_message_and_no_limit() -> None:
    assert waiting_line(
        "mail_pop3_default", POP3, "INBOX", unseen_only=False, delay=0.5, max_emails=-1
    ) == (
        "Waiting for mail in INBOX of mail_pop3_default (pop.example.com:995, ssl), "
        "checking every 0.5 s, all of it per run."
    )


def test_waiting_line_with_idle() -> None:
    line = waiting_line("c", POP3, "Sales", unseen_only=True, delay=60, max_emails=1, use_idle=True)
    assert "woken by IMAP IDLE, checking at least every 60 s, at most 1 per run." in line


def test_a_forged_log_line_in_a_subject_stays_on_one_line() -> None:
    record = {"from": "x@example.com", "subject": "Hi\r\n[error] fake line", "attachments": []}
    assert (
        received_line(record)
        == 'Received "Hi [error] fake line" from x@example.com, no attachments.'
    )


def test_long_values_are_cut_and_many_attachments_summed_up() -> None:
    assert shown("a" * 200) == "a" * 79 + "…"
    attachments = [{"filename": f"f{i}.txt", "size": 2 * 1024 * 1024} for i in range(7)]
    line = received_line({"from": "", "subject": "", "attachments": attachments})
    assert line.startswith(
        'Received "(no subject)" from (no sender), 7 attachments: f0.txt (2.0 MB)'
    )
    assert line.endswith("f4.txt (2.0 MB) and 2 more.")


def test_sent_line_lists_every_envelope_recipient() -> None:
    result = {"message_id": "<m@x>", "subject": "Re: Offer", "to": ["a@x.org", "bcc@x.org"]}
    assert sent_line(result) == 'Sent "Re: Offer" to a@x.org, bcc@x.org (Message-ID <m@x>).'
