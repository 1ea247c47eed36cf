"""Per-task-instance state in Airflow's storage: what a try did that its retry must know.

Kept in JSON Variables (see :mod:`airflow_provider_mail.keyvalue` for the layer below):

* ``mail_provider/handover/<dag_id>/<task_id>``: the last claims of a
  ``ReceiveEmailSensor`` per run, so that a retry after a crash delivers the same messages
  instead of losing them (:mod:`airflow_provider_mail.handover.ledger`). Deleting it is
  safe when no run of that task is in progress.
* ``mail_provider/sent/<dag_id>/<task_id>``: which emails of a ``SendEmailOperator`` run
  went out before a try failed, so that its retry does not send them twice.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mail.keyvalue import (
    PREFIX,
    KeyValueStore,
    MemoryStore,
    VariableStore,
    update,
)


class TaskLedger:
    """What one task instance did that its retry must know, kept across tries.

    ``kind`` ``"handover"``: the sensor writes its claim here before it reads or marks
    any message; when the task, its worker or the triggerer dies before the task's result
    is stored, the next try of the same task instance delivers the same messages again,
    so nothing is lost, and messages whose hand-over completed are already seen, so later
    runs do not get them again. ``kind`` ``"sent"``: the emails a failed try of
    ``SendEmailOperator`` sent already. Entries of the last :attr:`KEEP` runs are kept.
    """

    KEEP = 50

    def __init__(
        self,
        store: KeyValueStore,
        kind: str,
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int | None,
    ) -> None:
        self.store = store
        self.key = f"{PREFIX}/{kind}/{dag_id}/{task_id}"
        self.entry = f"{run_id}#{-1 if map_index is None else map_index}"

    @classmethod
    def for_task(cls, kind: str, context: Any) -> TaskLedger:
        """The ledger of the running task instance (``context["ti"]``), in Variables.

        Outside a task run (``execute({})`` called by hand) there is no retry to inform:
        the ledger then lives in memory.
        """
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is None:
            return cls(MemoryStore(), kind, dag_id="", task_id="", run_id="", map_index=None)
        return cls(
            VariableStore(),
            kind,
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=ti.map_index,
        )

    def pending(self) -> dict[str, Any] | None:
        """What an earlier try of this task instance wrote, if anything."""
        entries = self.store.get(self.key) or {}
        entry = entries.get(self.entry)
        return entry if isinstance(entry, dict) else None

    def record(self, payload: dict[str, Any]) -> None:
        """Write this try's entry (replacing an earlier try's)."""

        # Concurrent runs of one task share the Variable: one update at a time per host.
        def with_entry(value: Any) -> dict[str, Any]:
            entries = dict(value or {})
            entries.pop(self.entry, None)
            entries[self.entry] = payload
            return dict(list(entries.items())[-self.KEEP :])

        update(self.store, self.key, with_entry)
