"""What a user reads in task logs: sentences about mail, no warnings from a normal run."""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_mail.get_provider_info import get_provider_info
from airflow_provider_mail.masking import short_choices
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.smtp import SmtpServers
from tests.airflow_runs import task_states
from tests.conftest import REPO
from tests.fixtures_smtp import SmtpConnFactory

sys.path.insert(0, str(REPO / "dags_examples"))

SHORT_SECRET = "too short"
ATTACHED = (
    b"From: Jane Doe <jane@example.org>\r\nTo: info@example.com\r\nSubject: Price list\r\n"
    b"Message-ID: <logs-1@example.org>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0100\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nPlease send prices.\r\n"
    b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"'
    b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
)


@pytest.fixture
def fresh_short_secret_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow warns about a too-short secret once per process: make this test see it."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    monkeypatch.setattr(SecretsMasker, "_has_warned_short_secret", False)


def form_extras() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every combination of the choices the connection forms offer, with the defaults."""
    for conn_type in get_provider_info()["connection-types"]:
        fields = conn_type["conn-fields"]
        choices = {
            name: field["schema"].get("enum") or [field["schema"].get("default", "")]
            for name, field in fields.items()
        }
        for values in itertools.product(*choices.values()):
            yield conn_type["connection-type"], dict(zip(choices, values, strict=True))


def test_no_connection_a_form_can_save_warns_about_short_secrets(
    fresh_short_secret_warning: None, caplog: pytest.LogCaptureFixture
) -> None:
    combinations = list(form_extras())
    assert {"mail_imap", "mail_pop3", "mail_smtp"} <= {conn_type for conn_type, _ in combinations}
    with caplog.at_level(logging.WARNING):
        for conn_type, extras in combinations:
            conn = Connection(conn_id="form", conn_type=conn_type, extra=json.dumps(extras))
            # What Airflow does on every lookup (for its secrets cache), then what hooks do.
            conn.get_uri()
            assert conn.extra_dejson == extras
    assert SHORT_SECRET not in caplog.text


def test_secrets_in_extras_are_still_masked() -> None:
    from airflow.sdk._shared.secrets_masker import redact

    conn = Connection(
        conn_id="oauth",
        conn_type="mail_imap",
        extra='{"security": "ssl", "oauth2_client_secret": "cs-4711-abcdef", '
        '"nested": {"api_token": "tk-0815-ghijkl"}, "oauth2_client_id": "visible-client-id"}',
    )
    _ = conn.extra_dejson
    shown = redact("cs-4711-abcdef tk-0815-ghijkl visible-client-id ssl")
    assert shown == "*** *** visible-client-id ssl"


def test_a_short_real_secret_still_warns(
    fresh_short_secret_warning: None, caplog: pytest.LogCaptureFixture
) -> None:
    conn = Connection(conn_id="x", conn_type="mail_smtp", extra='{"oauth2_client_secret": "abc"}')
    with caplog.at_level(logging.WARNING):
        _ = conn.extra_dejson
    assert SHORT_SECRET in caplog.text


def test_only_the_short_choices_are_exempt() -> None:
    assert short_choices() == {"ssl", "none", "host"}


def test_reference_run_logs_sentences_and_no_warning(
    airflow_db: object,
    dovecot: Dovecot,
    certificate: Certificate,
    mail_connection: ConnFactory,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    fresh_short_secret_warning: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The demo's settings (ssl, claim lock host) through a real run."""
    dovecot.clear("info")
    imap = receive_connection(
        mail_connection, dovecot, "imap", "ssl", certificate, claim_lock="host"
    )
    smtp_conn = smtp_connection(smtp.ssl, security="ssl")
    dovecot.deliver("info", [ATTACHED])
    caplog.set_level(logging.INFO)
    dag = importlib.import_module("obtain_info_emails_to_leads").dag

    run = dag.test(
        run_conf={
            "imap_conn_id": imap,
            "smtp_conn_id": smtp_conn,
            "leads_email": "leads@example.com",
        }
    )

    assert set(task_states(run).values()) == {"success"}
    task_log = capfd.readouterr().out
    address = f"localhost:{dovecot.imaps_port}"
    assert (
        f"Waiting for unseen mail in INBOX of {imap} ({address}, ssl), checking every 5 s, "
        "at most 5 per run." in task_log
    )
    assert (
        'Received "Price list" from Jane Doe <jane@example.org>, 1 attachment: a.pdf (9 bytes).'
        in task_log
    )
    assert 'Sent "' in task_log and "to leads@example.com (Message-ID <" in task_log
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert SHORT_SECRET not in caplog.text
    assert "RFC3986" not in caplog.text + task_log
    assert not warnings, [r.getMessage() for r in warnings]
    assert "[warning" not in task_log
