"""The AssetWatcher's ``leave_unread``/``move``/``delete`` in milliseconds (pure logic).

A fake mailbox and memory stores: the trigger's take into the handed-over set with its
pending mark, a triggerer that dies before its event or before clearing the mark, the
run's ``fetch_claimed`` skipping repeats, what a task owes across the events it reads,
and when an earlier run's move or delete may happen. The Dovecot and real-Airflow side is
``tests/test_asset_after_receive.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mail.handover.actions import Action, HandedOverSet, Remembered
from airflow_provider_mail.handover.engine import HandOver
from airflow_provider_mail.handover.mailbox import Poll
from airflow_provider_mail.handover.owed import AssetOwedActions
from airflow_provider_mail.handover.state import Stores
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.mail import settle
from airflow_provider_mail.mail.state import Claim, oldest_first
from airflow_provider_mail.mail.uid_ranges import (
    handed_over,
    pending_of,
    with_handed_over,
    without_handed_over,
    without_pending,
)
from airflow_provider_mail.storage import TaskLedger
from tests.unit.test_handover_engine import SINK, FakeMailbox


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str) -> Any:
        self.gets += 1
        return super().get(key)


class ExcludingMailbox(FakeMailbox):
    """The fake folder, whose search honours ``exclude`` as the IMAP hook's does."""

    def peek(self, poll: Poll) -> Claim:
        excluded = poll.exclude("INBOX", self.uidvalidity) if poll.exclude else ()
        uids = [u for u in self.messages if u not in excluded]
        return Claim("imap", "INBOX", self.uidvalidity, tuple(oldest_first(uids, poll.max_emails)))


def test_pending_lives_beside_the_handed_over_uids() -> None:
    value = with_handed_over(None, 7, [1, 2, 3], pending=True)
    assert value == {"uidvalidity": 7, "uids": "1:3", "pending": "1:3"}
    value = with_handed_over(value, 7, [4])
    assert list(pending_of(value, 7)) == [1, 2, 3]
    value = without_pending(value, 7, [1, 2, 3])
    assert value == {"uidvalidity": 7, "uids": "1:4"}  # the shape without pending is unchanged
    value = without_handed_over(with_handed_over(value, 7, [5, 6], pending=True), 7, [5])
    assert (list(handed_over(value, 7)), list(pending_of(value, 7))) == ([1, 2, 3, 4, 6], [6])
    assert not pending_of(value, 8)  # another UIDVALIDITY: names nothing


def test_a_watching_set_reads_its_variable_once_and_its_takes_refresh_it() -> None:
    store = CountingStore()
    watched = HandedOverSet(store, conn_id="c", account="a", folder="INBOX", refresh_seconds=60)
    other = HandedOverSet(store, conn_id="c", account="a", folder="INBOX")
    for _ in range(5):
        assert not watched.ranges(1)  # five idle polls
    assert store.gets == 1
    other.take(Claim("imap", "INBOX", 1, (1, 2)), None)  # another poller of the folder
    assert not watched.ranges(1)  # not seen yet: a poll may find 1 and 2 again...
    owned = watched.take(Claim("imap", "INBOX", 1, (1, 2, 3)), None, pending=True)
    assert owned.uids == (3,)  # ...but the take reads afresh and drops them
    assert list(watched.ranges(1)) == [1, 2, 3]  # and the copy is current again
    assert watched.pending() == Claim("imap", "INBOX", 1, (3,))


def _watcher(mailbox: ExcludingMailbox, store: MemoryStore, mode: str = "move") -> HandOver:
    def sets(folder: str) -> HandedOverSet:
        return HandedOverSet(store, conn_id="c", account="a", folder=folder)

    after = Remembered(Action(mode, "Done" if mode == "move" else None), sets, immediate=False)
    stores = Stores(store, conn_id="c", account="a")
    return HandOver(mailbox, stores=stores, after=after)


def _read(engine: HandOver, claim: Claim, run_id: str) -> list[str]:
    return [r["message_id"] for r in engine.fetch_claimed(claim, SINK, run_id=run_id)]


@pytest.mark.parametrize("mode", ["leave_unread", "move", "delete"])
def test_a_triggerer_killed_before_or_after_its_event_hands_over_once(mode: str) -> None:
    mailbox, store = ExcludingMailbox(), MemoryStore()
    mailbox.deliver("<a@x>", "<b@x>", "<c@x>")
    poll = Poll(None, False, 2)

    # Life 1 takes two messages and dies before its event goes out.
    taken = _watcher(mailbox, store, mode).watch(poll, recover_pending=True)
    assert taken.uids == (1, 2)
    # Life 2 emits them first, then dies before clearing the pending mark.
    life2 = _watcher(mailbox, store, mode)
    assert life2.watch(poll, recover_pending=True) == taken
    # Life 3 repeats that event, clears it, and takes the rest.
    life3 = _watcher(mailbox, store, mode)
    repeated = life3.watch(poll, recover_pending=True)
    assert repeated == taken
    life3.released(repeated)
    rest = life3.watch(poll, recover_pending=False)
    assert rest.uids == (3,)
    life3.released(rest)
    assert not life3.watch(poll, recover_pending=False)
    assert not _watcher(mailbox, store, mode).watch(poll, recover_pending=True)

    reader = _watcher(mailbox, store, mode)
    runs = [_read(reader, taken, "run-2"), _read(reader, repeated, "run-3")]
    runs += [_read(reader, rest, "run-4"), _read(reader, taken, "run-2")]  # run-2's retry
    assert runs == [["<a@x>", "<b@x>"], [], ["<c@x>"], ["<a@x>", "<b@x>"]]
    assert not any(m.seen or m.pending for m in mailbox.messages.values())  # no flag touched


def _task_ledger() -> TaskLedger:
    """The ledger of run ``r1``'s task ``read`` (the DAG run an event started)."""
    return TaskLedger(
        MemoryStore(),
        "asset_after_receive/c/INBOX",
        dag_id="d",
        task_id="read",
        run_id="r1",
        map_index=None,
    )


def test_a_task_owes_every_event_it_read_until_it_succeeds() -> None:
    ledger = _task_ledger()
    owed = AssetOwedActions(ledger)
    record = {"folder": "INBOX", "uidvalidity": 7, "uidl": None}
    owed.owe([{**record, "uid": 3}, {**record, "uid": 4}], Action("move", "Done"))
    owed.owe([{**record, "uid": 1}], Action("move", "Done"))  # the run's second event
    owed.owe([{**record, "uid": 9}], Action("leave_unread"))  # nothing to owe
    assert ledger.pending() == {
        "protocol": "imap",
        "folder": "INBOX",
        "uidvalidity": 7,
        "uids": [1, 3, 4],
        "uidls": [],
        "after_receive": "move",
        "move_to": "Done",
    }
    recreated = settle.owed_with(
        ledger.pending(), {**ledger.pending(), "uidvalidity": 8, "uids": [1]}, "move", "Done"
    )
    assert recreated["uids"] == [1]  # the old UIDs name nothing in a recreated folder

    task = SimpleNamespace(on_success_callback=[print])
    context = {"task": task}
    owed.after_task_success(context, lambda: None)
    owed.after_task_success(context, lambda: None)  # a second event of the same folder
    assert len(task.on_success_callback) == 2 and task.on_success_callback[0] is print


def test_an_asset_run_that_failed_keeps_its_messages_instead_of_giving_them_back() -> None:
    payload = {"after_receive": "delete", "uids": [5]}
    owed = {"ok#-1": payload, "failed#-1": payload, "running#-1": payload}
    states = {
        "ok": {"read": "success"},
        "failed": {"read": "failed"},
        "running": {"read": "running"},
    }
    sensor = settle.plan(owed, "read", states)
    asset = settle.plan(owed, "read", states, give_back=False)
    assert [(s.run_id, s.act) for s in sensor] == [("ok", True), ("failed", False)]
    assert [(s.run_id, s.act) for s in asset] == [("ok", True)]


def test_the_trigger_takes_these_modes_as_an_asset_watcher() -> None:
    from airflow_provider_mail.exceptions import MailConfigError
    from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

    for mode, move_to in (("leave_unread", None), ("move", "Done"), ("delete", None)):
        trigger = ReceiveEmailTrigger("c", after_receive=mode, move_to=move_to)
        assert trigger.mark_seen  # takes what it emits, without unseen_only
        path, kwargs = trigger.serialize()
        assert ReceiveEmailTrigger(**kwargs).serialize() == (path, kwargs)
    assert not ReceiveEmailTrigger("c", after_receive="delete", mark_seen=False).mark_seen
    with pytest.raises(MailConfigError, match="after_receive='move' needs move_to"):
        ReceiveEmailTrigger("c", after_receive="move")
    with pytest.raises(MailConfigError, match="the folder being read"):
        ReceiveEmailTrigger("c", after_receive="move", move_to="INBOX")


@pytest.mark.parametrize(("state", "acts"), [("success", True), ("up_for_retry", False)])
def test_the_success_callback_acts_only_when_airflow_recorded_the_success(
    state: str, acts: bool
) -> None:
    """The task runner calls success callbacks even when its success report was refused."""
    ledger = _task_ledger()
    owed = AssetOwedActions(ledger)
    owed.owe([{"folder": "INBOX", "uidvalidity": 7, "uidl": None, "uid": 3}], Action("delete"))
    asked: list[Any] = []

    def get_task_states(**kwargs: Any) -> Any:
        asked.append(kwargs)
        return {"r1": {"read": state}}

    ti = SimpleNamespace(
        dag_id="d", task_id="read", run_id="r1", map_index=-1, get_task_states=get_task_states
    )
    task = SimpleNamespace(on_success_callback=[])
    opened: list[str] = []

    class Session:
        def __enter__(self) -> Any:
            opened.append("session")
            raise RuntimeError("stop here: the move or delete would follow")

        def __exit__(self, *exc: object) -> None:
            pass

    owed.after_task_success({"task": task}, Session)
    callback = task.on_success_callback[0]
    if acts:
        with pytest.raises(RuntimeError, match="stop here"):
            callback({"ti": ti, "task": task})
    else:
        callback({"ti": ti, "task": task})
    assert opened == (["session"] if acts else [])
    assert asked == [{"dag_id": "d", "task_ids": ["read"], "run_ids": ["r1"]}]
