"""When ``move`` and ``delete`` may happen: only once the hand-over is durable (pure).

A sensor's records are durably handed over when Airflow has stored its XCom and marked
the task instance successful: before that, a retry clears the XCom and must deliver the
same messages again, so they must still be in the folder. The sensor therefore moves or
deletes right after its success is recorded (its success callback), and every later
hand-over of the same task first *settles* the ledger entries of earlier runs whose move
or delete did not happen (a worker killed in between): entries of successful task
instances are acted on, entries of task instances that finally failed give their
messages back, and entries still running wait. See docs/handover.md, "After the
hand-over: leave_unread, move, delete".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Ledger entry keys added by ``after_receive``: the action, its folder, and whether it
#: happened (or was given up: the messages were given back).
AFTER_RECEIVE_KEY = "after_receive"
MOVE_TO_KEY = "move_to"
SETTLED_KEY = "settled"

#: The actions that must wait for the task's success (they cannot be undone).
IRREVERSIBLE = ("move", "delete")

#: Task instance states after which a hand-over is settled without the action: its
#: records never became a successful result, so the messages are given back.
GIVE_BACK_STATES = frozenset({"failed", "upstream_failed", "skipped", "removed"})


@dataclass(frozen=True)
class Settlement:
    """What to do for one ledger entry of an earlier task instance."""

    entry: str
    payload: Mapping[str, Any]
    act: bool  # True: move/delete now; False: give the messages back

    @property
    def run_id(self) -> str:
        return split_entry(self.entry)[0]


def split_entry(entry: str) -> tuple[str, int]:
    """A ledger entry key ``run_id#map_index`` as ``(run_id, map_index)``."""
    run_id, _, map_index = entry.rpartition("#")
    try:
        return run_id, int(map_index)
    except ValueError:
        return entry, -1


def unsettled(entries: Mapping[str, Any], own_entry: str) -> dict[str, Mapping[str, Any]]:
    """The entries of other task instances whose move or delete is still owed."""
    return {
        key: payload
        for key, payload in entries.items()
        if key != own_entry
        and isinstance(payload, Mapping)
        and payload.get(AFTER_RECEIVE_KEY) in IRREVERSIBLE
        and not payload.get(SETTLED_KEY)
        and (payload.get("uids") or payload.get("uidls"))
    }


def state_key(task_id: str, map_index: int) -> str:
    """How Airflow's ``get_task_states`` names a task instance in its answer."""
    return task_id if map_index < 0 else f"{task_id}_{map_index}"


def plan(
    owed: Mapping[str, Mapping[str, Any]],
    task_id: str,
    states: Mapping[str, Mapping[str, Any]],
    *,
    give_back: bool = True,
) -> list[Settlement]:
    """For each owed entry, act (its task instance succeeded) or give back (it finally
    failed); entries of task instances still running, retrying, or unknown to Airflow
    (a deleted run: its result cannot be confirmed) wait and stay excluded from polls.

    ``states`` is ``get_task_states``' answer: ``{run_id: {task_id[_map_index]: state}}``.
    ``give_back=False`` (an AssetWatcher's run: its event was the hand-over, and clearing
    the failed run reads the same messages again) lets failed ones wait too.
    """
    settlements = []
    for entry, payload in owed.items():
        run_id, map_index = split_entry(entry)
        state = states.get(run_id, {}).get(state_key(task_id, map_index))
        if state == "success":
            settlements.append(Settlement(entry, payload, act=True))
        elif give_back and state in GIVE_BACK_STATES:
            settlements.append(Settlement(entry, payload, act=False))
    return settlements


def owed_with(
    earlier: Mapping[str, Any] | None, claim: Mapping[str, Any], after_receive: str, move_to: Any
) -> dict[str, Any]:
    """The owed entry of a task instance after it handed over one more ``claim`` (a
    payload) from the same folder: an AssetWatcher run reads each of its events with its
    own ``fetch_claimed``, and every one of them is owed until the task succeeds.

    UIDs (or UIDLs) of the same UIDVALIDITY are merged, the entry is unsettled again; an
    entry of another UIDVALIDITY (the folder was recreated) names nothing any more.
    """
    entry = {**claim, AFTER_RECEIVE_KEY: after_receive, MOVE_TO_KEY: move_to}
    if (
        not isinstance(earlier, Mapping)
        or earlier.get("protocol") != claim.get("protocol")
        or earlier.get("uidvalidity") != claim.get("uidvalidity")
    ):
        return entry
    entry["uids"] = sorted({*earlier.get("uids", ()), *claim.get("uids", ())})
    uidls = list(earlier.get("uidls", ()))
    entry["uidls"] = uidls + [uidl for uidl in claim.get("uidls", ()) if uidl not in uidls]
    return entry
