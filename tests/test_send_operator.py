"""SendEmailOperator against real aiosmtpd servers (the operator's execute, no DAG run)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError, MailSendError, SendIncompleteError
from airflow_provider_mail.operators.map import apply_mapping
from airflow_provider_mail.operators.send import SendEmailOperator
from devtools.smtp import SmtpServers
from tests.fixtures_smtp import SmtpConnFactory

CONTEXT: Any = {}


def operator(conn_id: str, **kwargs: Any) -> SendEmailOperator:
    kwargs.setdefault("from_email", "Sales <sales@example.com>")
    return SendEmailOperator(task_id="send", conn_id=conn_id, **kwargs)


@pytest.fixture
def conn_id(smtp: SmtpServers, smtp_connection: SmtpConnFactory) -> str:
    return smtp_connection(smtp.starttls)


def test_one_email_from_input_values(smtp: SmtpServers, conn_id: str) -> None:
    results = operator(
        conn_id, to="a@example.org", subject="Hello", text="Body", reply_to="help@example.com"
    ).execute(CONTEXT)
    (received,) = smtp.starttls.messages
    message = received.parsed()
    assert results == [
        {
            "message_id": message["Message-ID"],
            "from": "Sales <sales@example.com>",
            "to": ["a@example.org"],
            "subject": "Hello",
        }
    ]
    assert message["Reply-To"] == "help@example.com"
    assert received.mail_from == "sales@example.com"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"]


def test_input_values_win_by_default(smtp: SmtpServers, conn_id: str) -> None:
    data = [{"to": "data@example.org", "subject": "Data subject", "html": "<p>data html</p>"}]
    operator(conn_id, to="op@example.org", subject="Operator subject", data=data).execute(CONTEXT)
    (received,) = smtp.starttls.messages
    message = received.parsed()
    assert received.rcpt_tos == ("op@example.org",)
    assert message["Subject"] == "Operator subject"
    body = message.get_body(("html",))
    assert body is not None and "data html" in body.get_content()


def test_consumed_data_wins_when_chosen_and_empty_falls_back(
    smtp: SmtpServers, conn_id: str
) -> None:
    data = [
        {"to": "first@example.org", "subject": "Data subject", "from": "data@example.net"},
        {"to": "second@example.org", "subject": ""},
    ]
    results = operator(
        conn_id,
        to="op@example.org",
        subject="Operator subject",
        text="Operator text",
        data=data,
        parameter_priority="consumed_data",
    ).execute(CONTEXT)
    first, second = smtp.starttls.messages
    assert first.rcpt_tos == ("first@example.org",)
    assert first.parsed()["Subject"] == "Data subject"
    assert first.mail_from == "data@example.net"
    assert second.rcpt_tos == ("second@example.org",)
    assert second.parsed()["Subject"] == "Operator subject"
    assert second.mail_from == "sales@example.com"
    assert second.parsed().get_content().strip() == "Operator text"
    assert [result["to"] for result in results] == [["first@example.org"], ["second@example.org"]]


def test_bcc_is_delivered_but_not_in_the_headers(smtp: SmtpServers, conn_id: str) -> None:
    (result,) = operator(
        conn_id, to="a@example.org", cc=["c@example.org"], bcc="Hidden <hidden@example.net>"
    ).execute(CONTEXT)
    (received,) = smtp.starttls.messages
    assert received.rcpt_tos == ("a@example.org", "c@example.org", "hidden@example.net")
    assert b"hidden@example.net" not in received.data
    assert received.parsed()["Bcc"] is None
    assert result["to"] == ["a@example.org", "c@example.org", "hidden@example.net"]


def test_text_and_html_are_multipart_alternative(smtp: SmtpServers, conn_id: str) -> None:
    operator(conn_id, to="a@example.org", text="Plain", html="<b>Rich</b>").execute(CONTEXT)
    message = smtp.starttls.messages[0].parsed()
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


def test_many_emails_over_one_session(smtp: SmtpServers, conn_id: str) -> None:
    data = [{"to": f"lead{n}@example.org", "subject": f"Lead {n}"} for n in range(6)]
    results = operator(conn_id, data=data).execute(CONTEXT)
    assert [result["subject"] for result in results] == [f"Lead {n}" for n in range(6)]
    assert smtp.starttls.connections == 1
    assert len(smtp.starttls.messages) == 6


def test_max_connections_spreads_the_batch(smtp: SmtpServers, conn_id: str) -> None:
    data = [{"to": f"lead{n}@example.org", "subject": f"Lead {n}"} for n in range(6)]
    results = operator(conn_id, data=data, max_connections=2).execute(CONTEXT)
    assert [result["subject"] for result in results] == [f"Lead {n}" for n in range(6)]
    assert smtp.starttls.connections == 2
    assert len(smtp.starttls.messages) == 6


@pytest.mark.parametrize(
    ("bad_item", "expected"),
    [
        ({"to": ""}, "Item 1 has no recipient"),
        ({"to": "broken@"}, "Item 1 has an invalid to address 'broken@'"),
        ({"cc": "a@example.org\r\nBcc: victim@example.net"}, "Item 1 has a line break in its cc"),
    ],
)
def test_a_bad_item_sends_nothing(
    smtp: SmtpServers, conn_id: str, bad_item: dict[str, str], expected: str
) -> None:
    data = [{"to": "ok@example.org"}, bad_item, {"to": "ok2@example.org"}]
    with pytest.raises(MailSendError) as info:
        operator(conn_id, data=data, parameter_priority="consumed_data").execute(CONTEXT)
    assert str(info.value).startswith(expected)
    assert smtp.starttls.messages == []
    assert smtp.starttls.connections == 0


def test_line_break_in_a_mapped_subject_sends_nothing(smtp: SmtpServers, conn_id: str) -> None:
    received_mail = [
        {"from": "Jane <jane@example.org>", "subject": "Fine"},
        {"from": "evil@example.net", "subject": "Hi\r\nBcc: victim@example.net"},
    ]
    mapped = apply_mapping(
        received_mail,
        {"to": '{{ item["from"] | address }}', "subject": "Re: {{ subject }}"},
    )
    with pytest.raises(MailSendError) as info:
        operator(conn_id, data=mapped, parameter_priority="consumed_data").execute(CONTEXT)
    assert str(info.value).startswith("Item 1 has a line break in its subject")
    assert "victim" not in str(info.value)
    assert smtp.starttls.messages == []
    assert smtp.starttls.connections == 0


def test_refused_recipient_is_reported(smtp: SmtpServers, conn_id: str) -> None:
    smtp.starttls.refuse("gone@example.org")
    data = [{"to": "a@example.org"}, {"to": "gone@example.org"}, {"to": "b@example.org"}]
    with pytest.raises(SendIncompleteError) as info:
        operator(conn_id, data=data).execute(CONTEXT)
    text = str(info.value)
    assert "refused recipient 'gone@example.org' of email 1" in text
    assert "emails 0 (counting from 0) were sent already and emails 1-2 were not" in text
    assert [item.rcpt_tos for item in smtp.starttls.messages] == [("a@example.org",)]


def logged(capfd: pytest.CaptureFixture[str]) -> str:
    """Airflow logs through structlog to the process's stdout/stderr."""
    out, err = capfd.readouterr()
    return out + err


def test_empty_list_sends_nothing_and_says_so(
    smtp: SmtpServers, conn_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert operator(conn_id, to="a@example.org", data=[]).execute(CONTEXT) == []
    assert "data is an empty list, so no email was sent." in logged(capfd)
    assert smtp.starttls.connections == 0


def test_dict_data_is_one_email(smtp: SmtpServers, conn_id: str) -> None:
    operator(conn_id, data={"to": "a@example.org", "subject": "One"}).execute(CONTEXT)
    assert [item.parsed()["Subject"] for item in smtp.starttls.messages] == ["One"]


def test_unknown_keys_are_ignored_with_a_warning(
    smtp: SmtpServers, conn_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = [{"to": "a@example.org", "message_id": "<x@y>", "Subject": "typo"}]
    operator(conn_id, data=data).execute(CONTEXT)
    assert "Ignored data keys that are not email fields: Subject, message_id." in logged(capfd)
    assert len(smtp.starttls.messages) == 1


def test_unknown_priority_fails_when_the_task_is_built() -> None:
    with pytest.raises(MailConfigError, match="parameter_priority 'mapped'"):
        SendEmailOperator(task_id="send", from_email="a@example.com", parameter_priority="mapped")


@pytest.mark.parametrize("kwargs", [{"from_email": ""}, {"max_connections": 0}])
def test_bad_parameters_fail_when_the_task_is_built(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("from_email", "a@example.com")
    with pytest.raises(MailConfigError):
        SendEmailOperator(task_id="send", **kwargs)


@pytest.mark.parametrize("data", ["text", [{"to": "a@example.org"}, "x"]])
def test_data_must_be_dicts(smtp: SmtpServers, conn_id: str, data: Any) -> None:
    with pytest.raises(MailConfigError, match="dict"):
        operator(conn_id, data=data).execute(CONTEXT)
    assert smtp.starttls.connections == 0


def test_template_fields() -> None:
    assert set(SendEmailOperator.template_fields) == {
        "conn_id",
        "from_email",
        "to",
        "cc",
        "bcc",
        "subject",
        "text",
        "html",
        "reply_to",
        "data",
        "attachments",
        "in_reply_to",
        "references",
        "headers",
        "auto_submitted",
    }


def test_retry_after_a_refused_recipient_sends_only_what_did_not_go_out(
    airflow_db: object, smtp: SmtpServers, conn_id: str
) -> None:
    """The same task instance tried twice: emails of the first try are not sent again."""
    import uuid
    from types import SimpleNamespace

    ti = SimpleNamespace(
        dag_id="send_retry", task_id="send", run_id=str(uuid.uuid4()), map_index=-1
    )
    data = [{"to": "a@example.org"}, {"to": "gone@example.org"}, {"to": "b@example.org"}]
    smtp.starttls.refuse("gone@example.org")
    with pytest.raises(SendIncompleteError):
        operator(conn_id, data=data, subject="S").execute({"ti": ti})
    smtp.starttls.recorder.refused.clear()

    results = operator(conn_id, data=data, subject="S").execute({"ti": ti})
    assert [item.rcpt_tos for item in smtp.starttls.messages] == [
        ("a@example.org",),
        ("gone@example.org",),
        ("b@example.org",),
    ]
    assert [r["to"] for r in results] == [
        ["a@example.org"],
        ["gone@example.org"],
        ["b@example.org"],
    ]
    first_message_id = smtp.starttls.messages[0].parsed()["Message-ID"]
    assert results[0]["message_id"] == first_message_id

    # The task succeeded: clearing it later sends the whole batch, like any operator.
    operator(conn_id, data=data, subject="S").execute({"ti": ti})
    assert len(smtp.starttls.messages) == 6
