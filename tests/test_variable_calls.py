"""How many Airflow Variable API calls a sensor makes per hand-over (IMAP and POP3).

Every call is a round trip from a worker to Airflow's API server, so the count is what a
busy deployment pays per delivered batch. Measured on the code before the hand-over
engine (IMAP ``unseen_only``: 2 at task start + 7 per hand-over; POP3: 2 + 1 in the
trigger's poll + 7) and kept as an upper bound here.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred

from airflow_provider_mail import keyvalue
from airflow_provider_mail.compat import BaseHook
from airflow_provider_mail.hooks.registry import receive_hook
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered

#: Most calls per phase: task start (owed give-backs, the ledger entry), the trigger's poll
#: (POP3 reads its seen ids), the hand-over (write ahead, reserve, take, Message-IDs).
MOST = {
    "imap": {"task start": 2, "trigger poll": 0, "hand-over": 7},
    "pop3": {"task start": 2, "trigger poll": 1, "hand-over": 6},
}


class CountingVariables:
    def __init__(self, real: Any, calls: Counter[str]) -> None:
        self.real, self.calls = real, calls

    def get(self, *args: Any) -> Any:
        self.calls["get"] += 1
        return self.real.get(*args)

    def set(self, *args: Any) -> Any:
        self.calls["set"] += 1
        return self.real.set(*args)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_variable_calls_of_one_hand_over(
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    airflow_db: object,
    tmp_path: Path,
) -> None:
    calls: Counter[str] = Counter()
    real = keyvalue._variables
    monkeypatch.setattr(keyvalue, "_variables", lambda: CountingVariables(real(), calls))
    dovecot.clear("info")
    conn_id = receive_connection(
        mail_connection, dovecot, protocol, "ssl", certificate, conn_id=f"count_{protocol}"
    )
    sensor = ReceiveEmailSensor(
        task_id="receive", conn_id=conn_id, unseen_only=True, attachments_dir=str(tmp_path)
    )
    ti = SimpleNamespace(dag_id="count", task_id="receive", run_id="", map_index=-1)
    counted: dict[str, list[int]] = {phase: [] for phase in MOST[protocol]}
    for run in range(2):  # the first and a later run (state already there)
        dovecot.deliver("info", numbered(3, f"Count{run}"))
        ti.run_id = str(uuid.uuid4())
        context = {"ti": ti}
        calls.clear()
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context)
        counted["task start"].append(calls.total())
        trigger: Any = deferred.value.trigger
        hook = receive_hook(conn_id, BaseHook.get_connection(conn_id), None)
        calls.clear()
        claim = trigger._peek(hook, trigger.max_emails)
        hook.close()
        counted["trigger poll"].append(calls.total())
        calls.clear()
        records = sensor.execute_complete(context, {"status": "success", **claim.to_payload()})
        counted["hand-over"].append(calls.total())
        assert [r["subject"] for r in records] == [f"Count{run} {i}" for i in range(3)]
    print(protocol, counted)
    for phase, most in MOST[protocol].items():
        assert max(counted[phase]) <= most, (phase, counted[phase])
