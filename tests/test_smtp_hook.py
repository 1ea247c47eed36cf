"""SmtpHook against real aiosmtpd servers: test_connection in every mode, and send()."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from airflow_provider_mail.exceptions import (
    MailAuthError,
    MailConfigError,
    MailConnectionError,
    MailSendError,
    MailTLSError,
    SendIncompleteError,
)
from airflow_provider_mail.hooks.smtp import SmtpHook
from devtools.certs import Certificate, free_port
from devtools.smtp import SMTP_PASSWORD, SilentServer, SmtpServers
from tests.fixtures_smtp import SmtpConnFactory

WRONG_PASSWORD = "Wrong-Pa55word-0815"


def message(number: int, *, to: str = "lead@example.org", bcc: str | None = None) -> EmailMessage:
    result = EmailMessage()
    result["From"] = "Sales <sales@example.com>"
    result["To"] = to
    if bcc:
        result["Bcc"] = bcc
    result["Subject"] = f"Message {number}"
    result.set_content(f"Body {number}")
    return result


# --- test_connection: success ------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["plain", "starttls", "ssl"])
def test_connection_succeeds_in_every_security_mode(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory, flavour: str
) -> None:
    server = getattr(smtp, flavour)
    ok, text = SmtpHook(smtp_connection(server)).test_connection()
    assert ok, text
    assert f"({server.security})" in text
    assert "NOOP" in text
    assert server.recorder.logins == ["mailer"]
    assert SMTP_PASSWORD not in text


def test_connection_without_login(smtp: SmtpServers, smtp_connection: SmtpConnFactory) -> None:
    ok, text = SmtpHook(smtp_connection(smtp.plain, login=None, password=None)).test_connection()
    assert ok, text
    assert "without logging in" in text
    assert smtp.plain.recorder.logins == []


# --- test_connection: each failure in one sentence -----------------------------------------


def failure(conn_id: str) -> str:
    ok, text = SmtpHook(conn_id).test_connection()
    assert not ok
    assert SMTP_PASSWORD not in text
    assert WRONG_PASSWORD not in text
    assert text.count(". ") == 0 and text.endswith(".")
    return text


@pytest.mark.parametrize("flavour", ["plain", "starttls", "ssl"])
def test_wrong_password(smtp: SmtpServers, smtp_connection: SmtpConnFactory, flavour: str) -> None:
    text = failure(smtp_connection(getattr(smtp, flavour), password=WRONG_PASSWORD))
    assert "rejected the user name 'mailer' or its password" in text


@pytest.mark.parametrize("flavour", ["starttls", "ssl"])
def test_certificate_not_trusted_without_pasted_certificate(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory, flavour: str
) -> None:
    text = failure(smtp_connection(getattr(smtp, flavour), server_certificate=""))
    assert "is not trusted" in text
    assert "paste that certificate into the connection's Server Certificate field" in text
    assert getattr(smtp, flavour).recorder.logins == []


@pytest.mark.parametrize("flavour", ["starttls", "ssl"])
def test_pasted_certificate_that_is_not_the_servers(
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    other_certificate: Certificate,
    flavour: str,
) -> None:
    server = getattr(smtp, flavour)
    text = failure(smtp_connection(server, server_certificate=other_certificate.pem))
    assert "the pasted Server Certificate does not match it" in text
    assert server.recorder.logins == []


@pytest.mark.parametrize("flavour", ["starttls", "ssl"])
def test_host_name_mismatch(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory, flavour: str
) -> None:
    text = failure(smtp_connection(getattr(smtp, flavour), host="127.0.0.1"))
    assert "is not valid for the host name '127.0.0.1'" in text


def test_no_starttls_offered_never_falls_back_to_plain_text(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    text = failure(smtp_connection(smtp.no_starttls))
    assert "does not offer STARTTLS" in text
    assert smtp.no_starttls.recorder.logins == []


def test_connection_refused(smtp_connection: SmtpConnFactory, smtp: SmtpServers) -> None:
    port = free_port()
    text = failure(smtp_connection(smtp.plain, port=port))
    assert f"Connection to localhost:{port} was refused" in text


def test_unknown_host(smtp_connection: SmtpConnFactory, smtp: SmtpServers) -> None:
    text = failure(smtp_connection(smtp.plain, host="nonexistent.invalid"))
    assert "'nonexistent.invalid' could not be resolved" in text


def test_timeout(
    smtp_connection: SmtpConnFactory, smtp: SmtpServers, silent_server: SilentServer
) -> None:
    conn_id = smtp_connection(smtp.plain, host="127.0.0.1", port=silent_server.port, timeout=1)
    text = failure(conn_id)
    assert "did not answer within 1 seconds" in text


# --- send ------------------------------------------------------------------------------------


def test_send_many_over_one_session(smtp: SmtpServers, smtp_connection: SmtpConnFactory) -> None:
    emails = [message(number) for number in range(5)]
    results = SmtpHook(smtp_connection(smtp.starttls)).send(emails)
    assert [result["subject"] for result in results] == [f"Message {n}" for n in range(5)]
    assert smtp.starttls.connections == 1
    received = smtp.starttls.messages
    assert len(received) == 5
    assert {item.connection for item in received} == {received[0].connection}
    assert all(item.tls and item.login == "mailer" for item in received)
    assert [item.parsed()["Message-ID"] for item in received] == [
        result["message_id"] for result in results
    ]


def test_send_strips_bcc_but_delivers_it(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    original = message(1, to="a@example.org", bcc="Hidden <hidden@example.net>")
    original["Cc"] = "c@example.org"
    (result,) = SmtpHook(smtp_connection(smtp.ssl)).send([original])
    assert result["to"] == ["a@example.org", "c@example.org", "hidden@example.net"]
    assert result["from"] == "Sales <sales@example.com>"
    (received,) = smtp.ssl.messages
    assert received.mail_from == "sales@example.com"
    assert received.rcpt_tos == ("a@example.org", "c@example.org", "hidden@example.net")
    assert b"hidden@example.net" not in received.data
    assert received.parsed()["Bcc"] is None
    assert original["Bcc"] == "Hidden <hidden@example.net>"


def test_hook_as_context_manager_keeps_one_session_across_calls(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    with SmtpHook(smtp_connection(smtp.plain)) as hook:
        hook.send([message(1)])
        hook.send([message(2)])
    assert smtp.plain.connections == 1
    assert len(smtp.plain.messages) == 2


def test_send_outside_a_with_block_closes_its_session(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    hook = SmtpHook(smtp_connection(smtp.plain))
    hook.send([message(1)])
    hook.send([message(2)])
    assert smtp.plain.connections == 2
    assert hook._client is None


def test_empty_batch_opens_no_session(smtp: SmtpServers, smtp_connection: SmtpConnFactory) -> None:
    assert SmtpHook(smtp_connection(smtp.plain)).send([]) == []
    assert smtp.plain.connections == 0


def test_refused_recipient_stops_and_says_what_was_sent(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    smtp.plain.refuse("nobody@example.org")
    emails = [
        message(0),
        message(1, to="ok@example.org, nobody@example.org"),
        message(2),
        message(3),
    ]
    with pytest.raises(SendIncompleteError) as info:
        SmtpHook(smtp_connection(smtp.plain)).send(emails)
    text = str(info.value)
    assert "refused recipient 'nobody@example.org' of email 1" in text
    assert "550" in text
    assert "emails 0 (counting from 0) were sent already and emails 1-3 were not" in text
    assert [result["subject"] for result in info.value.sent] == ["Message 0"]
    assert [item.parsed()["Subject"] for item in smtp.plain.messages] == ["Message 0"]


def test_refused_first_recipient_sends_nothing(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    smtp.plain.refuse("nobody@example.org")
    with pytest.raises(MailSendError, match="no email was sent"):
        SmtpHook(smtp_connection(smtp.plain)).send([message(0, to="nobody@example.org")])
    assert smtp.plain.messages == []


def test_connection_errors_keep_their_type(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    with pytest.raises(MailAuthError):
        SmtpHook(smtp_connection(smtp.plain, password=WRONG_PASSWORD)).send([message(0)])
    with pytest.raises(MailTLSError):
        SmtpHook(smtp_connection(smtp.no_starttls)).send([message(0)])
    with pytest.raises(MailConnectionError):
        SmtpHook(smtp_connection(smtp.plain, port=free_port())).send([message(0)])
    assert smtp.plain.messages == [] and smtp.no_starttls.messages == []


def test_parallel_sessions_keep_the_order(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    emails = [message(number) for number in range(9)]
    results = SmtpHook(smtp_connection(smtp.ssl)).send(emails, max_connections=3)
    assert [result["subject"] for result in results] == [f"Message {n}" for n in range(9)]
    assert smtp.ssl.connections == 3
    received = smtp.ssl.messages
    assert sorted(item.parsed()["Subject"] for item in received) == sorted(
        f"Message {n}" for n in range(9)
    )
    assert len({item.connection for item in received}) <= 3


def test_parallel_failure_reports_the_sent_ones(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    smtp.plain.refuse("nobody@example.org")
    emails = [message(number) for number in range(4)] + [message(4, to="nobody@example.org")]
    with pytest.raises(SendIncompleteError) as info:
        SmtpHook(smtp_connection(smtp.plain)).send(emails, max_connections=2)
    assert "refused recipient 'nobody@example.org' of email 4" in str(info.value)
    assert "emails 0-3 (counting from 0) were sent already" in str(info.value)
    assert len(info.value.sent) == 4 == len(smtp.plain.messages)


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_max_connections_must_be_positive(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory, value: object
) -> None:
    with pytest.raises(MailConfigError, match="max_connections"):
        SmtpHook(smtp_connection(smtp.plain)).send([message(0)], max_connections=value)  # type: ignore[arg-type]
    assert smtp.plain.connections == 0


def test_international_addresses_use_smtputf8(
    smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    (result,) = SmtpHook(smtp_connection(smtp.plain)).send([message(0, to="jörg@example.org")])
    assert result["to"] == ["jörg@example.org"]
    (received,) = smtp.plain.messages
    assert received.rcpt_tos == ("jörg@example.org",)
