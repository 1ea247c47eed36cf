"""Child process of the demo: run the reference DAG with ``dag.test()`` and report as JSON.

It runs in its own process, with stdout and stderr sent to the demo's Airflow log, so
Airflow's own log lines stay out of the demo's console; the parent reads the JSON.

Usage: python -m demo.run_dag RESULT_JSON RUN_CONF_JSON
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

DAG_ID = "obtain_info_emails_to_leads"


def main(result_path: str, run_conf_json: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from demo.airflow_env import DAGS_FOLDER

    # dag.test() wants the DAG defined by a file in the DAGs folder: import it from there.
    sys.path.insert(0, str(DAGS_FOLDER))
    dag = importlib.import_module(DAG_ID).dag
    run = dag.test(run_conf=json.loads(run_conf_json))

    result: dict[str, Any] = {"run_id": run.run_id, "state": str(run.state), "tasks": {}}
    with create_session() as session:
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
            )
        ):
            row = session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == run.dag_id,
                    XComModel.run_id == run.run_id,
                    XComModel.task_id == ti.task_id,
                    XComModel.key == "return_value",
                )
            ).first()
            result["tasks"][ti.task_id] = {
                "state": str(ti.state),
                "return_value": None if row is None else XComModel.deserialize_value(row),
            }
    Path(result_path).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
