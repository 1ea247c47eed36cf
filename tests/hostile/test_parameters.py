"""A careless DAG author: every wrong parameter fails when the task is built, in one sentence.

No server: the checks run in the constructors (and at the top of the hooks' methods),
before any connection is looked up or any mail is touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.hooks.smtp import SmtpHook
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.mail import params
from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

RECEIVE_WRONG: list[tuple[str, Any]] = [
    ("delay", None),
    ("delay", float("inf")),
    ("delay", float("nan")),
    ("delay", "5"),
    ("delay", -1),
    ("delay", True),
    ("delay", dt.timedelta(days=400)),
    ("unseen_only", "False"),
    ("unseen_only", 0),
    ("unseen_only", None),
    ("folder", 123),
    ("folder", ["INBOX"]),
    ("conn_id", None),
    ("conn_id", ""),
    ("conn_id", 7),
    ("max_emails", "5"),
    ("max_emails", 0),
    ("max_emails", 2.5),
    ("use_idle", "yes"),
]


def _one_sentence_naming(err: pytest.ExceptionInfo[MailConfigError], name: str) -> None:
    message = str(err.value)
    assert name in message
    assert message.endswith(".") and "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"), [*RECEIVE_WRONG, ("attachments_dir", 42), ("deferrable", "no")]
)
def test_sensor(name: str, value: Any) -> None:
    with pytest.raises(MailConfigError) as err:
        ReceiveEmailSensor(task_id="receive", **{name: value})
    _one_sentence_naming(err, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *RECEIVE_WRONG,
        ("mark_seen", "True"),
        ("timeout", float("inf")),
        ("timeout", "60"),
        ("max_failures", 0),
    ],
)
def test_trigger(name: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"conn_id": "mail_imap_default", name: value}
    with pytest.raises(MailConfigError) as err:
        ReceiveEmailTrigger(**kwargs)
    _one_sentence_naming(err, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("unseen_only", "False"), ("folder", 123), ("max_emails", "all"), ("attachments_dir", 42)],
)
@pytest.mark.parametrize(
    "hook", [ImapHook("never_looked_up"), Pop3Hook("never_looked_up", state_store=MemoryStore())]
)
def test_hooks_receive(hook: ImapHook | Pop3Hook, name: str, value: Any) -> None:
    with pytest.raises(MailConfigError) as err:
        hook.receive(**{name: value})
    _one_sentence_naming(err, name)


@pytest.mark.parametrize("emails", ["a string", None, 42, [object()], ["x"]])
def test_smtp_hook_send(emails: Any) -> None:
    with pytest.raises(MailConfigError) as err:
        SmtpHook("never_looked_up").send(emails)
    _one_sentence_naming(err, "mail")


SEND_WRONG: list[tuple[str, Any]] = [
    ("conn_id", None),
    ("to", 42),
    ("to", ["a@example.org", 42]),
    ("cc", {"a": "b"}),
    ("bcc", 1.5),
    ("reply_to", object()),
    ("subject", 3),
    ("text", b"bytes"),
    ("html", ["<p>"]),
    ("data", "not records"),
    ("data", [{"to": "a@example.org"}, "x"]),
    ("parameter_priority", "mapped"),
    ("max_connections", "2"),
    ("from_email", 12),
]


@pytest.mark.parametrize(("name", "value"), SEND_WRONG)
def test_send_operator(name: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"task_id": "send", "from_email": "a@example.org", name: value}
    with pytest.raises(MailConfigError) as err:
        SendEmailOperator(**kwargs)
    _one_sentence_naming(err, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("source", "text"), ("source", [1, 2]), ("mapping", {}), ("mapping", {"to": 5})],
)
def test_map_operator(name: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"task_id": "map", "source": [], "mapping": {"to": "x"}, name: value}
    with pytest.raises(MailConfigError) as err:
        MapOperator(**kwargs)
    assert str(err.value).count(".") >= 1
    assert name in str(err.value) or "mapping" in str(err.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReceiveEmailSensor(task_id="r", delay=dt.timedelta(seconds=2), folder="Archive"),
        lambda: ReceiveEmailSensor(task_id="r", delay=0, attachments_dir="s3://bucket/mail"),
        lambda: ReceiveEmailTrigger("c", delay=2, timeout=None, max_failures=1),
        lambda: SendEmailOperator(task_id="s", from_email="a@x.org", to=["b@x.org"], data=[]),
    ],
)
def test_good_values_still_build(build: Callable[[], object]) -> None:
    build()


def test_values_resolved_at_run_time_pass() -> None:
    class LaterValue:  # what an XComArg looks like to the checks
        def resolve(self, context: object) -> object:
            return context

        def iter_references(self) -> list[object]:
            return []

    later = LaterValue()
    assert params.check_records(later, "data", optional=True) is later
    assert params.check_addresses(later, "to") is later
    assert params.check_text(later, "subject") is later
