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
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.storage import TaskLedger

#: ``get_task_states``: ``(dag_id, task_id, run_ids) -> {run_id: {task key: state}}``.
TaskStates = Callable[[list[str]], Mapping[str, Mapping[str, Any]]]


def claim_of(records: list[dict[str, Any]]) -> Claim | None:
    """The messages of ``records`` as one claim (they come from one folder)."""
    if not records:
        return None
    first = records[0]
    if first.get("uidl") is not None:
        return Claim("pop3", str(first["folder"]), uidls=tuple(r["uidl"] for r in records))
    return Claim(
        "imap",
        str(first["folder"]),
        first.get("uidvalidity"),
        uids=tuple(int(r["uid"]) for r in records if r.get("uid") is not None),
    )


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
        self, mailbox: Mailbox, after: AfterReceive, task_id: str, task_states: TaskStates
    ) -> None:
        """Settle what earlier task instances of this task left owed (a worker killed
        between the success and the action): act for successful ones, give back for
        failed ones, leave the rest waiting."""
        owed = settle.unsettled(self.ledger.store.get(self.ledger.key) or {}, self.ledger.entry)
        if not owed:
            return
        run_ids = sorted({settle.split_entry(entry)[0] for entry in owed})
        for settlement in settle.plan(owed, task_id, task_states(run_ids)):
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
