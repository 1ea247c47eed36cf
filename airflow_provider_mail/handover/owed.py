"""The moves and deletes a sensor task owes until its hand-over is durable.

``move`` and ``delete`` cannot be undone, and the sensor's records are durably handed
over only once Airflow marked its task instance successful (a retry clears the XCom and
must deliver the same messages again). So the sensor writes what it owes here when it
returns its records, does it from its success callback, and every later run of the task
settles what a worker killed in between left owed (:mod:`~airflow_provider_mail.mail.settle`).

Airflow Variable ``mail_provider/after_receive/<dag_id>/<task_id>``, one entry per
``run_id#map_index`` (the last 50 runs): the claim, ``after_receive``, ``move_to`` and
``settled``. Deleting it is safe when no run of the task is in progress (what it owed
then stays in the folder, still never handed over again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_mail.handover.actions import Action, act
from airflow_provider_mail.handover.after import AfterReceive
from airflow_provider_mail.handover.mailbox import Mailbox
from airflow_provider_mail.keyvalue import update
from airflow_provider_mail.mail import settle
from airflow_provider_mail.mail.state import Claim, claim_of
from airflow_provider_mail.storage import TaskLedger

#: ``states(run_ids) -> {run_id: {task key: state}}``: Airflow's ``get_task_states`` for
#: one task's runs.
TaskStates = Callable[[list[str]], Mapping[str, Mapping[str, Any]]]


class OwedActions:
    """What one sensor task owes (its ledger of ``after_receive`` actions)."""

    def __init__(self, ledger: TaskLedger, log: Any = None) -> None:
        self.ledger = ledger
        self.log = log or logging.getLogger(__name__)

    @classmethod
    def for_task(cls, context: Any, log: Any = None) -> OwedActions:
        """The running task instance's (in memory outside a task run)."""
        return cls(TaskLedger.for_task("after_receive", context), log)

    def owe(self, records: list[dict[str, Any]], action: Action) -> None:
        """Record that the messages of ``records`` are to be moved or deleted."""
        claim = claim_of(records)
        if claim is None or not action.irreversible:
            return
        self.ledger.record(
            {
                **claim.to_payload(),
                settle.AFTER_RECEIVE_KEY: action.name,
                settle.MOVE_TO_KEY: action.move_to,
            }
        )

    def settle_own(self, mailbox: Mailbox) -> int:
        """Do what this task instance owes (it just succeeded); how many messages."""
        payload = self.ledger.pending()
        if not payload or payload.get(settle.SETTLED_KEY):
            return 0
        return self._act(mailbox, self.ledger.entry, payload)

    def settle_others(
        self,
        mailbox: Mailbox,
        after: AfterReceive,
        task_id: str,
        task_states: TaskStates,
        *,
        give_back: bool = True,
    ) -> None:
        """Settle what earlier task instances of this task left owed (a worker killed
        between the success and the action): act for successful ones, give back for
        failed ones (``give_back``), leave the rest waiting."""
        owed = settle.unsettled(self.ledger.store.get(self.ledger.key) or {}, self.ledger.entry)
        if not owed:
            return
        run_ids = sorted({settle.split_entry(entry)[0] for entry in owed})
        states = task_states(run_ids)
        for settlement in settle.plan(owed, task_id, states, give_back=give_back):
            if settlement.act:
                count = self._act(mailbox, settlement.entry, settlement.payload)
                self.log.info(
                    "Did the %s of %d message(s) that run %s handed over.",
                    settlement.payload[settle.AFTER_RECEIVE_KEY],
                    count,
                    settlement.run_id,
                )
            else:
                claim = Claim.from_payload(settlement.payload)
                if after.give_back(mailbox, claim):
                    self._settled(settlement.entry)
                    self.log.info(
                        "Gave back %d message(s) of run %s, which did not succeed.",
                        len(claim),
                        settlement.run_id,
                    )

    def _act(self, mailbox: Mailbox, entry: str, payload: Mapping[str, Any]) -> int:
        claim = Claim.from_payload(payload)
        action = Action(
            str(payload[settle.AFTER_RECEIVE_KEY]), payload.get(settle.MOVE_TO_KEY) or None
        )
        act(mailbox, claim, action)
        self._settled(entry)
        return len(claim)

    def _settled(self, entry: str) -> None:
        def mark(value: Any) -> Any:
            entries = dict(value or {})
            if isinstance(entries.get(entry), dict):
                entries[entry] = {**entries[entry], settle.SETTLED_KEY: True}
            return entries

        update(self.ledger.store, self.ledger.key, mark)


class AssetOwedActions(OwedActions):
    """What one task that read AssetWatcher events (``fetch_claimed``) owes, per folder.

    The event was the hand-over to the DAG run; the run's records are durable once the
    task that read them succeeded. So ``fetch_claimed`` owes the move or delete here
    (merged over the events one task instance reads), registers :meth:`after_task_success`,
    and settles what earlier runs of the task left owed (successful ones only: a failed
    run's messages stay in the folder, never handed over again, until the run is cleared
    and reads them again). Variable
    ``mail_provider/asset_after_receive/<conn_id>/<folder>/<dag_id>/<task_id>``, one entry
    per ``run_id#map_index``.
    """

    @classmethod
    def for_asset_task(
        cls, context: Any, conn_id: str, folder: str, log: Any = None
    ) -> AssetOwedActions:
        """The running task instance's, for messages of ``folder`` of ``conn_id``."""
        return cls(TaskLedger.for_task(f"asset_after_receive/{conn_id}/{folder}", context), log)

    def owe(self, records: list[dict[str, Any]], action: Action) -> None:
        """Add the messages of ``records`` to what this task instance owes."""
        claim = claim_of(records)
        if not claim or not action.irreversible:
            return
        payload = claim.to_payload()

        def with_claim(value: Any) -> dict[str, Any]:
            entries = dict(value or {})
            earlier = entries.pop(self.ledger.entry, None)
            entries[self.ledger.entry] = settle.owed_with(
                earlier, payload, action.name, action.move_to
            )
            return dict(list(entries.items())[-TaskLedger.KEEP :])

        update(self.ledger.store, self.ledger.key, with_claim)

    def settle_earlier_runs(self, mailbox: Mailbox, after: AfterReceive, context: Any) -> None:
        """Act for earlier runs of this task that succeeded but did not act (killed)."""
        ti = context["ti"]
        self.settle_others(
            mailbox, after, ti.task_id, task_states_of(context, self.log), give_back=False
        )

    def after_task_success(self, context: Any, new_hook: Callable[[], Any]) -> None:
        """Have the running task do what it owes once Airflow recorded its success.

        The task runner calls a task's ``on_success_callback`` list after the success was
        reported to the API server (Airflow 3.0 to 3.3); one callback per folder and task.
        """
        task = context["task"]
        callbacks = list(getattr(task, "on_success_callback", None) or [])
        if any(getattr(cb, "owed_key", None) == self.ledger.key for cb in callbacks):
            return
        task.on_success_callback = [*callbacks, _SettleOnSuccess(self, new_hook)]


class _SettleOnSuccess:
    """A success callback: do what :class:`AssetOwedActions` recorded for this task."""

    def __init__(self, owed: AssetOwedActions, new_hook: Callable[[], Any]) -> None:
        self.owed = owed
        self.owed_key = owed.ledger.key
        self.new_hook = new_hook

    def __call__(self, context: Any) -> None:
        payload = self.owed.ledger.pending()
        if not payload or payload.get(settle.SETTLED_KEY):
            return  # nothing owed: no session to open
        count = settle_once_successful(context, self.owed, self.new_hook)
        if count:
            self.owed.log.info("Did the move or delete of %d handed-over message(s).", count)


def settle_once_successful(context: Any, owed: OwedActions, new_hook: Callable[[], Any]) -> int:
    """Move or delete what this task instance handed over, once Airflow has stored its
    success (a success callback's work, for the sensor and the AssetWatcher's task alike);
    how many messages. Before that (see :func:`success_recorded`) the messages stay."""
    if not success_recorded(context, owed.log):
        owed.log.warning(
            "Airflow has not recorded this task's success, so the handed-over messages "
            "stay in the folder (no other run takes them): a retry reads them again, or a "
            "later run moves or deletes them once the task's state is final."
        )
        return 0
    with new_hook() as hook:
        return owed.settle_own(hook.mailbox)


def current_task_context() -> Any:
    """The running task's context, or ``None`` outside a task."""
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:
        return None


def success_recorded(context: Any, log: Any) -> bool:
    """Whether Airflow stored the running task instance's success.

    The task runner calls success callbacks also when reporting the success failed (the
    API server had moved the task instance on, e.g. cleared or up for retry: a 404 or
    409); a move or delete then would take away what the retry must read again. Airflows
    without ``get_task_states`` are trusted.
    """
    ti = context["ti"]
    if getattr(ti, "get_task_states", None) is None:
        return True
    map_index = ti.map_index if ti.map_index is not None else -1
    states = task_states_of(context, log)([ti.run_id])
    return states.get(ti.run_id, {}).get(settle.state_key(ti.task_id, map_index)) == "success"


def task_states_of(context: Any, log: Any) -> TaskStates:
    """Airflow's ``get_task_states`` for the running task's other runs (Airflow 3.0+)."""
    ti = context["ti"]

    def states(run_ids: list[str]) -> Any:
        ask = getattr(ti, "get_task_states", None)
        if ask is None:
            log.warning(
                "This Airflow cannot tell a task's earlier runs' states, so moves or deletes "
                "a killed worker left owed wait (the messages stay, never handed over "
                "again); upgrade Airflow to settle them."
            )
            return {}
        return ask(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=run_ids)

    return states
