"""The DAGs of :mod:`benchmarks.triggerer_scale`, copied into its Airflow's DAGs folder.

One DAG per mailbox (``scale_m<i>``, run once) with ``SCALE_SENSORS_PER_MAILBOX`` deferrable
``ReceiveEmailSensor``s on that mailbox (the reference's settings: unseen only, delay 5 s,
max 5), and ``scale_lag_probe``, whose one task defers to
:class:`benchmarks.lag_probe.LagProbeTrigger` to measure the triggerer's event loop.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseOperator, get_parsing_context

from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

MAILBOXES = int(os.environ.get("SCALE_MAILBOXES", "0"))
SENSORS_PER_MAILBOX = int(os.environ.get("SCALE_SENSORS_PER_MAILBOX", "5"))
START = datetime(2026, 1, 1)
#: Set: the scheduler defers the sensors itself (Airflow's ``start_from_trigger``), with
#: the trigger the sensor's ``execute`` would defer to, instead of a worker running them.
START_FROM_TRIGGER = os.environ.get("SCALE_START_FROM_TRIGGER") == "1"


class LagProbe(BaseOperator):
    """Defers to the lag probe for as long as the benchmark runs."""

    def execute(self, context: Any) -> None:
        from benchmarks.lag_probe import LagProbeTrigger

        self.defer(
            trigger=LagProbeTrigger(os.environ["SCALE_LAG_FILE"]), method_name="execute_complete"
        )

    def execute_complete(self, context: Any, event: Any = None) -> None:
        return None


def start_from_trigger(sensor: ReceiveEmailSensor) -> None:
    """Let the scheduler defer ``sensor`` to the trigger its ``execute`` would defer to."""
    from airflow.triggers.base import StartTriggerArgs

    from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

    classpath, kwargs = ReceiveEmailTrigger(
        conn_id=sensor.conn_id,
        folder=sensor.folder,
        unseen_only=sensor.unseen_only,
        max_emails=sensor.max_emails,
        delay=sensor.delay,
        mark_seen=False,
        timeout=float(sensor.timeout) if sensor.timeout is not None else None,
    ).serialize()
    sensor.start_trigger_args = StartTriggerArgs(
        trigger_cls=classpath,
        trigger_kwargs=kwargs,
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    sensor.start_from_trigger = True


with DAG("scale_lag_probe", schedule="@once", start_date=START, catchup=False):
    LagProbe(task_id="probe", retries=3, retry_delay=timedelta(seconds=5))

# A task process needs only its own DAG (Airflow's advice for generated DAGs); the
# dag-processor (no DAG id in the parsing context) builds them all.
ONLY = get_parsing_context().dag_id

for number in range(MAILBOXES):
    if ONLY is not None and f"scale_m{number}" != ONLY:
        continue
    with DAG(f"scale_m{number}", schedule="@once", start_date=START, catchup=False) as dag:
        for sensor in range(SENSORS_PER_MAILBOX):
            task = ReceiveEmailSensor(
                task_id=f"wait_{sensor}",
                conn_id=f"scale_m{number}",
                unseen_only=True,
                delay=5,
                max_emails=5,
            )
            if START_FROM_TRIGGER:
                start_from_trigger(task)
    globals()[dag.dag_id] = dag
