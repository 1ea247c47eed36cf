"""Nothing is lost: a worker killed (SIGKILL) in the middle of a hand-over, then retried.

The crashing run happens in a child process running ``dag.test()``; the retry is
``dag.test()`` again with the same logical date, i.e. the same DAG run and task
instance, as Airflow's retry would be.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.airflow_runs import run_killed, task_result
from tests.dags import receive_dags

CRASH_RUN = """
import sys
from datetime import datetime
import tests.conftest  # the same Airflow home and DB as the test process
from tests.dags import receive_dags
dag = getattr(receive_dags, sys.argv[1])
when = datetime.fromisoformat(sys.argv[2])
dag.test(logical_date=when, run_after=when, run_conf={"conn_id": sys.argv[3]})
"""


@pytest.mark.parametrize(
    ("dag_name", "point"),
    [
        ("crash_deferrable", "after_reserve"),
        ("crash_deferrable", "before_fetch"),
        ("crash_deferrable", "after_fetch"),
        ("crash_deferrable", "after_mark"),
        ("crash_poke", "after_mark"),
    ],
)
def test_killed_hand_over_is_delivered_by_the_retry_exactly_once(
    airflow_db: object,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    dag_name: str,
    point: str,
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(8, "Crash"))
    dag = getattr(receive_dags, dag_name)
    logical_date = datetime.now(timezone.utc).replace(microsecond=0)

    run_killed(CRASH_RUN, dag_name, logical_date.isoformat(), conn_id, point=point, timeout=300)

    retry = dag.test(
        logical_date=logical_date, run_after=logical_date, run_conf={"conn_id": conn_id}
    )
    first_five = [f"<crash-{i}@example.com>" for i in range(5)]
    assert task_result(retry, "collect") == first_five

    next_run = dag.test(run_conf={"conn_id": conn_id})
    assert task_result(next_run, "collect") == [f"<crash-{i}@example.com>" for i in range(5, 8)]
    with dovecot.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN") == []
