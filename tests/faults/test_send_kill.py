"""Sending without duplicates: a worker killed (SIGKILL) mid-batch, then the task retried.

The killed try runs ``SendEmailOperator.execute`` in a child process against the suite's
aiosmtpd (in this process) with the ledger in Airflow's database, exactly as a worker
would; the retry is the same task instance executed here. Counted: what the server
received, per recipient.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from airflow_provider_mail.operators.send import SendEmailOperator
from devtools.smtp import SmtpServers
from tests.conftest import REPO
from tests.fixtures_smtp import SmtpConnFactory

RECIPIENTS = [f"lead{number}@example.org" for number in range(5)]

# ``accepted``: killed when the server has accepted the third email, before it is recorded
# (the one window left); ``recorded``: killed right after the third email was recorded.
KILLED_TRY = """
import os, signal, sys
from types import SimpleNamespace
import tests.conftest  # the same Airflow home and database as the test process
from airflow_provider_mail.hooks.smtp import SmtpHook
from airflow_provider_mail.operators.send import SendEmailOperator, SentRecord

conn_id, run_id, point = sys.argv[1:4]
accepted = 0

def die():
    os.kill(os.getpid(), signal.SIGKILL)

transmit = SmtpHook._transmit
def transmit_then_maybe_die(self, client, email, index):
    global accepted
    transmit(self, client, email, index)
    accepted += 1
    if point == "accepted" and accepted == 3:
        die()
SmtpHook._transmit = transmit_then_maybe_die

record = SentRecord.__setitem__
def record_then_maybe_die(self, position, result):
    record(self, position, result)
    if point == "recorded" and len(self) == 3:
        die()
SentRecord.__setitem__ = record_then_maybe_die

ti = SimpleNamespace(dag_id="send_kill", task_id="send", run_id=run_id, map_index=-1)
SendEmailOperator(
    task_id="send", conn_id=conn_id, from_email="sales@example.com", subject="Offer",
    data=[{"to": to} for to in sys.argv[4:]],
).execute({"ti": ti})
"""


@pytest.mark.parametrize(("point", "duplicates"), [("accepted", 1), ("recorded", 0)])
def test_retry_after_a_kill_mid_batch_resends_at_most_one_email(
    airflow_db: object,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    point: str,
    duplicates: int,
) -> None:
    conn_id = smtp_connection(smtp.starttls)
    run_id = str(uuid.uuid4())
    child = subprocess.run(
        [sys.executable, "-c", KILLED_TRY, conn_id, run_id, point, *RECIPIENTS],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-3000:]
    assert len(smtp.starttls.messages) == 3

    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="send_kill", task_id="send", run_id=run_id, map_index=-1)
    results = SendEmailOperator(
        task_id="send",
        conn_id=conn_id,
        from_email="sales@example.com",
        subject="Offer",
        data=[{"to": to} for to in RECIPIENTS],
    ).execute({"ti": ti})

    received = Counter(message.rcpt_tos[0] for message in smtp.starttls.messages)
    print(
        f"\nkill -9 {point}: sent 5, received {sum(received.values())}, "
        f"duplicates {sum(received.values()) - len(received)}, "
        f"lost {len(set(RECIPIENTS) - set(received))}"
    )
    assert set(received) == set(RECIPIENTS)  # nothing lost
    assert sum(received.values()) - len(received) == duplicates
    assert [result["to"] for result in results] == [[to] for to in RECIPIENTS]
