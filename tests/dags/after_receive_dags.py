"""DAGs for the after_receive tests: ``dag.test(run_conf={"conn_id": ...})``.

One DAG per mode and wait (deferrable, poke), each with a ``search`` so that one message
of the inbox never matches; the crashing variants die with SIGKILL at the point named by
``MAIL_TEST_CRASH_AT``: the hand-over's points (``tests/faults/injection.py``), and
``before_action`` (the task instance succeeded, nothing moved or deleted yet),
``after_action`` (moved or deleted, not yet recorded as done) or ``success_unrecorded``
(the success callback runs although Airflow put the task instance up for retry; the
sensor must then leave the messages for the retry, and dies after its callback).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.handover.engine import HandOver
from airflow_provider_mail.handover.owed import OwedActions
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from tests.faults.injection import die, inject_crash

SEARCH = {"from": "billing@vendor.example"}


class CrashingSensor(ReceiveEmailSensor):
    """Dies at ``MAIL_TEST_CRASH_AT``; see the module's docstring."""

    def _hook(self) -> Any:
        point = os.environ.get("MAIL_TEST_CRASH_AT")
        if point == "after_reserve":
            # leave_unread/move/delete take into the handed-over set, not the mailbox's
            # take that inject_crash wraps: die right after the engine's reservation.
            reserve = HandOver.reserve

            def reserve_then_die(handover: HandOver, claim: Any) -> None:
                reserve(handover, claim)
                die()

            HandOver.reserve = reserve_then_die  # type: ignore[method-assign]
        return inject_crash(super()._hook(), point)

    def after_success(self, context: Any) -> None:
        point = os.environ.get("MAIL_TEST_CRASH_AT")
        if point == "before_action":
            die()
        if point == "success_unrecorded":
            # What a real scheduler did in the deployment suite: it handled the executor's
            # event of the try's deferring workload after the resumed try had started, and
            # put the running task instance up for retry; the try's success report then got
            # a 404, and Airflow still ran its success callbacks.
            put_up_for_retry(context["ti"].id)
            super().after_success(context)
            die()
        if point == "after_action":
            settled = OwedActions._settled

            def die_instead(owed: OwedActions, entry: str) -> None:
                die()

            OwedActions._settled = die_instead  # type: ignore[method-assign]
            try:
                super().after_success(context)
            finally:
                OwedActions._settled = settled  # type: ignore[method-assign]
            return
        super().after_success(context)


def put_up_for_retry(ti_id: Any) -> None:
    """Set a task instance's state in the metadata database, as the scheduler does."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == ti_id).values(state="up_for_retry")
        )


def _dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(
        dag_id, schedule=None, params={"conn_id": Param("mail_imap_default", type="string")}
    ) as dag:
        received = CrashingSensor(
            task_id="receive",
            conn_id="{{ params.conn_id }}",
            timeout=60,
            delay=0.5,
            max_emails=2,
            search=SEARCH,
            **sensor_kwargs,
        )

        @task
        def collect(records: list[dict[str, Any]]) -> list[str]:
            return [record["message_id"] for record in records]

        collect(received.output)
    return dag


MODES = {
    "leave_unread": {"after_receive": "leave_unread"},
    "move": {"after_receive": "move", "move_to": "Processed"},
    "delete": {"after_receive": "delete"},
}

DAGS = {
    f"{mode}_{wait}": _dag(
        f"test_after_receive_{mode}_{wait}", deferrable=wait == "deferrable", **kwargs
    )
    for mode, kwargs in MODES.items()
    for wait in ("deferrable", "poke")
}
globals().update(DAGS)  # module-level names, as DagBag finds DAGs
