"""``after_receive`` and ``search`` on the sensor, deferrable and poke, in real Airflow.

Each mode hands over the vendor's three messages in two runs (``max_emails=2``), never
the fourth message (the ``search`` does not match it). The kills at every step are in
``tests/test_after_receive_kills_*.py``.
"""

from __future__ import annotations

import pytest

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.airflow_runs import task_result
from tests.dags import after_receive_dags
from tests.vendor_mailbox import INVOICES, expected_state, mailbox_state


@pytest.mark.parametrize("wait", ["deferrable", "poke"])
@pytest.mark.parametrize("mode", ["leave_unread", "move", "delete"])
def test_each_mode_hands_over_the_matches_once(
    airflow_db: object,
    mail_connection: ConnFactory,
    vendor_inbox: Dovecot,
    certificate: Certificate,
    mode: str,
    wait: str,
) -> None:
    conn_id = receive_connection(mail_connection, vendor_inbox, "imap", "ssl", certificate)
    dag = after_receive_dags.DAGS[f"{mode}_{wait}"]
    first = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(first, "collect") == INVOICES[:2]
    second = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(second, "collect") == INVOICES[2:]
    assert mailbox_state(vendor_inbox) == expected_state(mode)


def test_pop3_delete_through_the_sensor(
    airflow_db: object,
    mail_connection: ConnFactory,
    vendor_inbox: Dovecot,
    certificate: Certificate,
) -> None:
    """POP3: the search runs on ``TOP n 0`` headers; ``DELE`` + ``QUIT`` after the success."""
    conn_id = receive_connection(
        mail_connection, vendor_inbox, "pop3", "ssl", certificate, conn_id="pop3_after_receive"
    )
    dag = after_receive_dags.DAGS["delete_deferrable"]
    first = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(first, "collect") == INVOICES[:2]
    second = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(second, "collect") == INVOICES[2:]
    assert mailbox_state(vendor_inbox) == expected_state("delete")
