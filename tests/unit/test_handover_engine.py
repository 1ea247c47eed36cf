"""The hand-over engine at every crash point, in milliseconds: a fake mailbox, memory state.

Each test plays what docs/handover.md describes: a try dies at a named point (the same
points the Dovecot fault suite kills real processes at), the next try of the same task
instance runs with the same ledger, and every message must reach downstream exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailStorageError
from airflow_provider_mail.handover.engine import HandOver
from airflow_provider_mail.handover.ledger import LedgerEntry, MemoryLedger
from airflow_provider_mail.handover.mailbox import Poll, Reserve
from airflow_provider_mail.handover.state import Stores
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.state import Claim, oldest_first

#: Where a try can die (as in tests/faults/injection.py), plus after its result is built
#: but before Airflow stored it.
CRASH_POINTS = ("after_reserve", "before_fetch", "after_fetch", "after_mark", "after_result")


class Crash(BaseException):
    """The process died here (no clean-up runs, as with SIGKILL)."""


class ReadFailed(Exception):
    """The server dropped the connection inside the read."""


@dataclass
class Message:
    message_id: str
    seen: bool = False
    pending: bool = False


@dataclass
class FakeMailbox:
    """One folder in memory, with the IMAP semantics the engine relies on."""

    messages: dict[int, Message] = field(default_factory=dict)
    uidvalidity: int | None = 1
    crash_at: str | None = None
    fail_read: bool = False
    fail_give_back: int = 0  # how many give-backs fail before one works
    taken_meanwhile: set[int] = field(default_factory=set)  # another poller's STORE wins
    protocol: str = "imap"
    calls: list[str] = field(default_factory=list)

    def deliver(self, *message_ids: str) -> None:
        for message_id in message_ids:
            self.messages[max(self.messages, default=0) + 1] = Message(message_id)

    def recreate(self) -> None:
        """The folder is recreated: new UIDVALIDITY, new UIDs, no flags."""
        self.uidvalidity = (self.uidvalidity or 0) + 1
        self.messages = {
            uid: Message(m.message_id) for uid, m in enumerate(self.messages.values(), 1)
        }

    def _crash(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise Crash(point)

    def _valid(self, claim: Claim) -> bool:
        return claim.uidvalidity == self.uidvalidity

    def peek(self, poll: Poll) -> Claim:
        self.calls.append("peek")
        uids = [u for u, m in self.messages.items() if not (poll.unseen_only and m.seen)]
        return Claim("imap", "INBOX", self.uidvalidity, tuple(oldest_first(uids, poll.max_emails)))

    def take(self, claim: Claim, *, reserve: Reserve | None = None, pending: bool = False) -> Claim:
        self.calls.append("take")
        if not self._valid(claim):
            return Claim(claim.protocol, claim.folder, claim.uidvalidity)
        unseen = tuple(u for u in claim.uids if u in self.messages and not self.messages[u].seen)
        if unseen and reserve is not None:
            reserve(Claim(claim.protocol, claim.folder, claim.uidvalidity, unseen))
            self._crash("after_reserve")
        for uid in self.taken_meanwhile & set(unseen):
            self.messages[uid].seen = True  # another poller's STORE came first
        owned = tuple(u for u in unseen if u not in self.taken_meanwhile)
        for uid in owned:
            self.messages[uid].seen = True
            self.messages[uid].pending = self.messages[uid].pending or pending
        if owned:
            self._crash("after_mark")
        return Claim(claim.protocol, claim.folder, claim.uidvalidity, owned)

    def read(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        self.calls.append("read")
        self._crash("before_fetch")
        if self.fail_read:
            raise ReadFailed("connection dropped")
        if not self._valid(claim):
            return []
        records = [
            {"message_id": self.messages[u].message_id, "uid": u}
            for u in claim.uids
            if u in self.messages
        ]
        self._crash("after_fetch")
        return records

    def mark(self, claim: Claim) -> None:
        self.calls.append("mark")
        if self._valid(claim):
            for uid in claim.uids:
                self.messages[uid].seen = True
        self._crash("after_mark")

    def give_back(self, claim: Claim) -> bool:
        self.calls.append("give_back")
        if self.fail_give_back:
            self.fail_give_back -= 1
            return False
        if self._valid(claim):
            for uid in claim.uids:
                self.messages[uid].seen = False
        return True

    def reopen(self) -> None:
        self.calls.append("reopen")

    def find_pending(self, folder: str | None) -> Claim:
        uids = tuple(u for u, m in self.messages.items() if m.pending)
        return Claim("imap", "INBOX", self.uidvalidity, uids)

    def release_pending(self, claim: Claim) -> None:
        for uid in claim.uids:
            self.messages[uid].pending = False

    def message_ids(self, claim: Claim) -> dict[int, str]:
        self.calls.append("message_ids")
        return {u: self.messages[u].message_id for u in claim.uids if u in self.messages}

    def uid_next(self, folder: str) -> int:
        return max(self.messages, default=0) + 1


SINK: Any = None  # the fake's records have no attachments


@dataclass
class Task:
    """One sensor task instance: its ledger survives its tries, its results go downstream."""

    mailbox: FakeMailbox
    unseen_only: bool = True
    max_emails: int = 3
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    stores: Stores = field(
        default_factory=lambda: Stores(MemoryStore(), conn_id="c", account="a@h:993")
    )
    downstream: list[str] = field(default_factory=list)

    def engine(self) -> HandOver:
        return HandOver(self.mailbox, ledger=self.ledger, stores=self.stores)

    def run_try(self, crash_at: str | None = None) -> list[str] | None:
        """One try (``execute``: the earlier try's entry first, else one poll)."""
        self.mailbox.crash_at = crash_at if crash_at != "after_result" else None
        engine = self.engine()
        try:
            records = engine.deliver_unfinished(SINK, unseen_only=self.unseen_only)
            if not records:
                claim = engine.peek(Poll(None, self.unseen_only, self.max_emails))
                records = engine.hand_over(claim, SINK, unseen_only=self.unseen_only)
        except Crash:
            return None
        if crash_at == "after_result":
            return None  # the worker died before Airflow stored the result
        ids = [r["message_id"] for r in records]
        self.downstream += ids
        return ids


def _mailbox(count: int) -> FakeMailbox:
    mailbox = FakeMailbox()
    mailbox.deliver(*(f"<m{i}@x>" for i in range(count)))
    return mailbox


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_try_killed_at_any_point_is_delivered_by_its_retry_once(point: str) -> None:
    mailbox = _mailbox(5)
    task = Task(mailbox)

    assert task.run_try(crash_at=point) is None
    assert task.run_try() == ["<m0@x>", "<m1@x>", "<m2@x>"]
    next_run = Task(mailbox)
    assert next_run.run_try() == ["<m3@x>", "<m4@x>"]
    assert not any(not m.seen for m in mailbox.messages.values())


@pytest.mark.parametrize("point", ["before_fetch", "after_fetch", "after_mark", "after_result"])
def test_without_unseen_only_the_retry_delivers_the_same_claim(point: str) -> None:
    mailbox = _mailbox(2)
    task = Task(mailbox, unseen_only=False, max_emails=-1)

    assert task.run_try(crash_at=point) is None
    mailbox.deliver("<late@x>")  # the retry delivers its claim, not what is there now
    assert task.run_try() == ["<m0@x>", "<m1@x>"]
    assert all(mailbox.messages[uid].seen for uid in (1, 2))


def test_a_retry_of_an_entry_not_reserved_leaves_to_others_what_they_took() -> None:
    mailbox = _mailbox(3)
    task = Task(mailbox)
    found = task.engine().peek(Poll(None, True, -1))
    task.ledger.write_ahead(found)  # then it died
    mailbox.messages[2].seen = True  # another poller took the second message meanwhile

    assert task.run_try() == ["<m0@x>", "<m2@x>"]
    entry = task.ledger.entry()
    assert entry == LedgerEntry(Claim("imap", "INBOX", 1, (1, 3)), reserved=True)


def test_a_retry_of_a_reserved_entry_delivers_all_of_it() -> None:
    mailbox = _mailbox(3)
    task = Task(mailbox)
    found = task.engine().peek(Poll(None, True, -1))
    task.ledger.reserve(found)
    mailbox.messages[1].seen = True  # it marked the first before it died

    assert task.run_try() == ["<m0@x>", "<m1@x>", "<m2@x>"]
    assert all(m.seen for m in mailbox.messages.values())


def test_a_store_the_server_refused_in_part_rewrites_the_reservation() -> None:
    mailbox = _mailbox(3)
    mailbox.taken_meanwhile = {2}
    task = Task(mailbox)

    assert task.run_try() == ["<m0@x>", "<m2@x>"]
    assert task.ledger.entry() == LedgerEntry(Claim("imap", "INBOX", 1, (1, 3)), reserved=True)


def test_a_failed_read_gives_back_and_leaves_the_entry_unreserved() -> None:
    mailbox = _mailbox(3)
    mailbox.fail_read = True
    task = Task(mailbox)

    with pytest.raises(ReadFailed):
        task.run_try()
    assert not any(m.seen for m in mailbox.messages.values())
    entry = task.ledger.entry()
    assert entry is not None and not entry.reserved
    mailbox.fail_read = False
    assert task.run_try() == ["<m0@x>", "<m1@x>", "<m2@x>"]


def test_a_give_back_that_fails_twice_is_owed_and_settled_by_the_next_poll() -> None:
    mailbox = _mailbox(2)
    mailbox.fail_read, mailbox.fail_give_back = True, 2
    task = Task(mailbox)

    with pytest.raises(ReadFailed):
        task.run_try()
    assert mailbox.calls[-3:] == ["give_back", "reopen", "give_back"]
    owed = task.stores.owed()
    assert owed is not None and [len(Claim.from_payload(p)) for p in owed.claims()] == [2]
    assert all(m.seen for m in mailbox.messages.values()), "the server stayed unreachable"

    mailbox.fail_read = False
    records = HandOver(mailbox, stores=task.stores).receive(Poll(None, True, -1), SINK)
    assert [r["message_id"] for r in records] == ["<m0@x>", "<m1@x>"]
    assert owed.claims() == []


def test_a_read_failure_without_a_take_gives_nothing_back() -> None:
    """Without unseen_only nothing was taken: flags another client set stay as they are."""
    mailbox = _mailbox(2)
    mailbox.messages[1].seen = True
    mailbox.fail_read = True

    with pytest.raises(ReadFailed):
        Task(mailbox, unseen_only=False).run_try()
    assert "give_back" not in mailbox.calls
    assert mailbox.messages[1].seen


def test_a_reservation_that_cannot_be_written_takes_nothing() -> None:
    class BrokenLedger(MemoryLedger):
        def reserve(self, claim: Claim) -> None:
            raise OSError("API server unreachable")

    mailbox = _mailbox(2)
    task = Task(mailbox, ledger=BrokenLedger())
    with pytest.raises(MailStorageError, match="nothing was taken"):
        task.run_try()
    assert not any(m.seen for m in mailbox.messages.values())


@pytest.mark.parametrize("path", ["sensor", "receive"])
def test_a_recreated_folder_does_not_hand_over_again(path: str) -> None:
    """Every path checks Message-IDs after a new UIDVALIDITY (ImapHook.receive too)."""
    mailbox = _mailbox(2)
    stores = Stores(MemoryStore(), conn_id="c", account="a@h:993")

    def hand_over() -> list[str]:
        if path == "sensor":
            return Task(mailbox, stores=stores, max_emails=-1).run_try() or []
        engine = HandOver(mailbox, stores=stores)
        return [r["message_id"] for r in engine.receive(Poll(None, True, -1), SINK)]

    assert hand_over() == ["<m0@x>", "<m1@x>"]
    mailbox.recreate()
    mailbox.deliver("<new@x>")
    assert hand_over() == ["<new@x>"]
    assert hand_over() == []


def test_message_ids_are_written_only_when_they_change() -> None:
    writes: list[str] = []

    class CountingStore(MemoryStore):
        def set(self, key: str, value: Any) -> None:
            writes.append(key.split("/")[1])
            super().set(key, value)

    mailbox = _mailbox(2)
    stores = Stores(CountingStore(), conn_id="c", account="a@h:993")
    task = Task(mailbox, unseen_only=False, stores=stores)
    task.run_try()
    task.run_try()  # the same two messages again: nothing new to remember
    assert writes == ["imap_delivered"]


def test_claims_without_uidvalidity_never_look_up_message_ids() -> None:
    mailbox = _mailbox(2)
    mailbox.uidvalidity = None
    Task(mailbox).run_try()
    assert "message_ids" not in mailbox.calls


def test_an_asset_watcher_killed_before_its_event_re_emits_the_claim() -> None:
    mailbox = _mailbox(2)
    engine = HandOver(mailbox)
    poll = Poll(None, True, 5)

    first = engine.watch(poll, recover_pending=True)
    assert first.uids == (1, 2) and all(m.seen and m.pending for m in mailbox.messages.values())
    # The triggerer died before the event went out; its next life:
    again = HandOver(mailbox).watch(poll, recover_pending=True)
    assert again == first
    HandOver(mailbox).released(again)
    assert not any(m.pending for m in mailbox.messages.values())
    assert not HandOver(mailbox).watch(poll, recover_pending=True)


def test_a_repeated_asset_event_reaches_one_run_and_its_retry() -> None:
    mailbox = _mailbox(2)
    stores = Stores(MemoryStore(), conn_id="c", account="a@h:993")
    claim = HandOver(mailbox).watch(Poll(None, True, 5), recover_pending=False)

    def fetch(run_id: str) -> list[str]:
        engine = HandOver(mailbox, stores=stores)
        return [r["message_id"] for r in engine.fetch_claimed(claim, SINK, run_id=run_id)]

    assert fetch("run-1") == ["<m0@x>", "<m1@x>"]
    assert fetch("run-2") == [], "a run started by the repeated event"
    assert fetch("run-1") == ["<m0@x>", "<m1@x>"], "a retry of the first run"
