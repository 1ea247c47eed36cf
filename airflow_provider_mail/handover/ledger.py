"""The ledger: what a sensor task instance claimed, kept across its tries.

The hand-over writes its claim here before any message is touched (*write ahead*) and
marks it *reserved* under the claim locks right before it takes the messages; a retry
of the same task instance reads the entry back (docs/handover.md, "What a retry does").
Airflow Variable ``mail_provider/handover/<dag_id>/<task_id>``, one entry per
``run_id#map_index``; in memory for a hook's own ``receive`` and for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.storage import TaskLedger

#: Ledger entries with this key set name messages the task took (or was about to take while
#: no other poller could): its retry delivers all of them.
RESERVED = "reserved"


@dataclass(frozen=True)
class LedgerEntry:
    """What an earlier try wrote: its claim, and whether it was reserved."""

    claim: Claim
    reserved: bool


class Ledger(Protocol):
    """Where one task instance's hand-over is recorded."""

    def entry(self) -> LedgerEntry | None:
        """What an earlier try of this task instance wrote, if anything."""

    def write_ahead(self, claim: Claim) -> None:
        """Record the claim, not reserved (before any message is touched, or after a
        give-back: a retry then takes again like any poller)."""

    def reserve(self, claim: Claim) -> None:
        """Record the claim as reserved: its messages are this task's."""


class HandoverLedger:
    """A :class:`Ledger` over a :class:`~airflow_provider_mail.storage.TaskLedger`."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    @classmethod
    def for_task(cls, context: Any) -> HandoverLedger:
        """The running task instance's ledger (in memory when there is none)."""
        return cls(TaskLedger.for_task("handover", context))

    def entry(self) -> LedgerEntry | None:
        """The entry of this task instance, when it names any message."""
        payload = self.ledger.pending()
        if payload is None:
            return None
        claim = Claim.from_payload(payload)
        return LedgerEntry(claim, bool(payload.get(RESERVED))) if claim else None

    def write_ahead(self, claim: Claim) -> None:
        """Write the claim as this try's entry."""
        self.ledger.record(claim.to_payload())

    def reserve(self, claim: Claim) -> None:
        """Write the claim as this try's entry, reserved."""
        self.ledger.record({**claim.to_payload(), RESERVED: True})


class MemoryLedger:
    """A :class:`Ledger` no other try reads: a hook's own ``receive``, and unit tests."""

    def __init__(self) -> None:
        self.written: LedgerEntry | None = None

    def entry(self) -> LedgerEntry | None:
        """What was written last, when it names any message."""
        return self.written if self.written is not None and self.written.claim else None

    def write_ahead(self, claim: Claim) -> None:
        """Keep the claim, not reserved."""
        self.written = LedgerEntry(claim, reserved=False)

    def reserve(self, claim: Claim) -> None:
        """Keep the claim, reserved."""
        self.written = LedgerEntry(claim, reserved=True)
