"""A real Airflow run: @task -> MapOperator -> SendEmailOperator, with dag.test()."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.smtp import SmtpServers
from tests.dags.records_to_mail import load_dag_module
from tests.fixtures_smtp import SmtpConnFactory


def test_map_send_dag_delivers_to_the_leads(
    airflow_db: Path,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn_id = smtp_connection(smtp.starttls, conn_id="map_send_smtp")
    monkeypatch.setenv("MAP_SEND_DAG_CONN_ID", conn_id)
    module = load_dag_module("tests.dags.map_send_dag")
    assert conn_id == module.CONN_ID

    run = module.map_send_dag.test()

    assert run.state == "success"
    received = smtp.starttls.messages
    assert len(received) == 2
    assert smtp.starttls.connections == 1
    first, second = (item.parsed() for item in received)
    assert [item.rcpt_tos for item in received] == [
        ("leads@example.com", "archive@example.com"),
        ("leads@example.com", "archive@example.com"),
    ]
    assert first["From"] == "Info Desk <info@example.com>"
    assert first["To"] == "leads@example.com"
    assert first["Bcc"] is None
    assert first["Reply-To"] == "Jane Doe <jane@example.org>"
    assert first["Subject"] == "New lead: Pricing?"
    assert first.get_content().strip() == "Jane Doe wrote: How much is it?"
    # data from a stranger's email is never rendered by Airflow or by the mapper
    assert second["Subject"] == "New lead: Demo {{ ds }}"
    assert second["Reply-To"] == "mike@example.net"
    assert second.get_content().strip() == "mike@example.net wrote: Can I see a demo?"
