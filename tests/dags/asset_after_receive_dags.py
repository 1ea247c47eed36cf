"""DAGs for the AssetWatcher ``after_receive`` tests: ``dag.test(run_conf=...)``.

Each stands for the DAG an ``AssetWatcher`` starts: its ``read`` task gets the trigger's
event payloads (``run_conf["events"]``, as ``triggering_asset_events`` would give them)
and reads them with ``fetch_claimed`` (the run's ``run_id`` by default), which moves or
deletes them once the task succeeded. ``MAIL_TEST_CRASH_AT`` kills the task process
(SIGKILL) at a named point: ``before_fetch``, ``before_action`` (the task instance
succeeded, nothing moved or deleted yet), ``after_action`` (moved or deleted, not yet
recorded as done).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.compat import BaseHook
from airflow_provider_mail.handover.owed import OwedActions
from airflow_provider_mail.hooks.registry import receive_hook
from tests.faults.injection import die


def _arm_crash() -> None:
    point = os.environ.get("MAIL_TEST_CRASH_AT")
    if point == "before_action":
        OwedActions.settle_own = lambda owed, mailbox: die()  # type: ignore[method-assign, assignment, misc]
    elif point == "after_action":
        OwedActions._settled = lambda owed, entry: die()  # type: ignore[method-assign, assignment, misc]


def _dag(mode: str) -> DAG:
    with DAG(
        f"test_asset_after_receive_{mode}",
        schedule=None,
        params={
            "conn_id": Param("mail_imap_default", type="string"),
            "events": Param([], type="array"),
        },
    ) as dag:

        @task
        def read(params: Any = None) -> list[str]:
            _arm_crash()
            conn_id = params["conn_id"]
            hook = receive_hook(conn_id, BaseHook.get_connection(conn_id), None)
            if os.environ.get("MAIL_TEST_CRASH_AT") == "before_fetch":
                hook.fetch = lambda claim, sink: die()  # type: ignore[method-assign]
            with hook:
                return [
                    record["message_id"]
                    for payload in params["events"]
                    for record in hook.fetch_claimed(payload)
                ]

        read()
    return dag


DAGS = {mode: _dag(mode) for mode in ("leave_unread", "move", "delete")}
globals().update(DAGS)  # module-level names, as DagBag finds DAGs
