"""``after_receive`` and ``search`` on the sensor, deferrable and poke, in real Airflow.

Each mode hands over the vendor's three messages in two runs (``max_emails=2``), never
the fourth message (the ``search`` does not match it), and the killed runs (SIGKILL in a
child ``dag.test()``, then the same DAG run again as Airflow's retry) lose and repeat
nothing: at every step of the hand-over, after the success before the move or delete,
and after the move or delete before it was recorded as done.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.airflow_runs import run_killed, task_result, task_states
from tests.dags import after_receive_dags
from tests.vendor_mailbox import INVOICES, deliver_invoices, expected_state, mailbox_state


@pytest.fixture
def inbox(dovecot: Dovecot) -> Iterator[Dovecot]:
    dovecot.clear("info")
    deliver_invoices(dovecot)
    yield dovecot
    dovecot.clear("info")


@pytest.mark.parametrize("wait", ["deferrable", "poke"])
@pytest.mark.parametrize("mode", ["leave_unread", "move", "delete"])
def test_each_mode_hands_over_the_matches_once(
    airflow_db: object,
    mail_connection: ConnFactory,
    inbox: Dovecot,
    certificate: Certificate,
    mode: str,
    wait: str,
) -> None:
    conn_id = receive_connection(mail_connection, inbox, "imap", "ssl", certificate)
    dag = after_receive_dags.DAGS[f"{mode}_{wait}"]
    first = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(first, "collect") == INVOICES[:2]
    second = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(second, "collect") == INVOICES[2:]
    assert mailbox_state(inbox) == expected_state(mode)


CRASH_RUN = """
import sys
from datetime import datetime
import tests.conftest  # the same Airflow home and DB as the test process
from tests.dags import after_receive_dags
dag = after_receive_dags.DAGS[sys.argv[1]]
when = datetime.fromisoformat(sys.argv[2])
dag.test(logical_date=when, run_after=when, run_conf={"conn_id": sys.argv[3]})
"""

# "success_unrecorded": the try is killed after its success callback ran although Airflow
# had not recorded its success (it put the task instance up for retry): like a kill in the
# hand-over, the retry must deliver the same messages, so they must still be in the folder.
HAND_OVER_POINTS = ["after_reserve", "before_fetch", "after_fetch"]
UNRECORDED = ["success_unrecorded"]
ACTION_POINTS = ["before_action", "after_action"]


@pytest.mark.parametrize(
    ("mode", "point"),
    [("leave_unread", point) for point in HAND_OVER_POINTS]
    + [
        (mode, point)
        for mode in ("move", "delete")
        for point in HAND_OVER_POINTS + ACTION_POINTS + UNRECORDED
    ],
)
def test_a_kill_at_any_step_loses_and_repeats_nothing(
    airflow_db: object,
    mail_connection: ConnFactory,
    inbox: Dovecot,
    certificate: Certificate,
    mode: str,
    point: str,
) -> None:
    conn_id = receive_connection(mail_connection, inbox, "imap", "ssl", certificate)
    name = f"{mode}_deferrable"
    dag = after_receive_dags.DAGS[name]
    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    run_killed(CRASH_RUN, name, when.isoformat(), conn_id, point=point, timeout=300)

    delivered: list[str] = []
    if point in HAND_OVER_POINTS + UNRECORDED:
        retry = dag.test(logical_date=when, run_after=when, run_conf={"conn_id": conn_id})
        assert task_states(retry)["receive"] == "success"
        delivered += task_result(retry, "collect")
    else:
        delivered += INVOICES[:2]  # the killed run's receive task succeeded with these
    while len(delivered) < len(INVOICES):
        run = dag.test(run_conf={"conn_id": conn_id})
        delivered += task_result(run, "collect")
    assert delivered == INVOICES  # each exactly once, oldest first
    assert mailbox_state(inbox) == expected_state(mode)


def test_pop3_delete_through_the_sensor(
    airflow_db: object, mail_connection: ConnFactory, inbox: Dovecot, certificate: Certificate
) -> None:
    """POP3: the search runs on ``TOP n 0`` headers; ``DELE`` + ``QUIT`` after the success."""
    conn_id = receive_connection(
        mail_connection, inbox, "pop3", "ssl", certificate, conn_id="pop3_after_receive"
    )
    dag = after_receive_dags.DAGS["delete_deferrable"]
    first = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(first, "collect") == INVOICES[:2]
    second = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(second, "collect") == INVOICES[2:]
    assert mailbox_state(inbox) == expected_state("delete")
