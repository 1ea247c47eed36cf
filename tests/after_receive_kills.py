"""A kill at one step of the sensor's ``after_receive``, then Airflow's retry and more runs.

The kill tests of one mode are one file each (``tests/test_after_receive_kills_*.py``):
``make test`` gives each xdist worker a file at a time, and the three modes' kills take
minutes each, so they run beside each other instead of one after another.

Each killed run (SIGKILL in a child ``dag.test()``, then the same DAG run again as
Airflow's retry) must lose and repeat nothing: at every step of the hand-over, after the
success before the move or delete, and after the move or delete before it was recorded
as done.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.airflow_runs import run_killed, task_result, task_states
from tests.dags import after_receive_dags
from tests.vendor_mailbox import INVOICES, expected_state, mailbox_state

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
#: Where each mode is killed: ``leave_unread`` has no action after the success.
POINTS = {
    "leave_unread": HAND_OVER_POINTS,
    "move": HAND_OVER_POINTS + ACTION_POINTS + UNRECORDED,
    "delete": HAND_OVER_POINTS + ACTION_POINTS + UNRECORDED,
}


def kill_then_rerun(
    mail_connection: ConnFactory, inbox: Dovecot, certificate: Certificate, mode: str, point: str
) -> None:
    """Kill the deferrable sensor of ``mode`` at ``point``, retry, run until all arrived."""
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
