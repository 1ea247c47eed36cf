"""The hand-over's state per mailbox, in the key-value layer (Airflow Variables).

* ``mail_provider/pop3_seen/<conn_id>/<login>@<host>:<port>``: the POP3 unique ids
  (UIDL) already handed over from that account (POP3 has no ``\\Seen`` flag). Delete the
  Variable to receive every message again.
* ``mail_provider/pop3_pending/<conn_id>/<login>@<host>:<port>``: POP3 unique ids an
  AssetWatcher trigger took whose event may not have gone out yet.
* ``mail_provider/imap_delivered/...``: see :class:`DeliveredMessageIds`.
* ``mail_provider/asset_delivered/...``: see :class:`AssetDeliveries`.
* ``mail_provider/give_back/<conn_id>/<login>@<host>:<port>``: see :class:`OwedGiveBacks`.

:class:`Stores` hands them to the engine for one connection and account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.keyvalue import (
    PREFIX,
    KeyValueStore,
    VariableStore,
    update,
    variable_lock,
    variables_reachable,
)


def pop3_seen_key(conn_id: str, account: str) -> str:
    """The Variable key of one POP3 account's seen UIDLs."""
    return f"{PREFIX}/pop3_seen/{conn_id}/{account}"


def pop3_pending_key(conn_id: str, account: str) -> str:
    """The Variable key of one POP3 account's UIDLs claimed by an AssetWatcher trigger."""
    return f"{PREFIX}/pop3_pending/{conn_id}/{account}"


class DeliveredMessageIds:
    """The Message-IDs recently handed over from one IMAP folder, with its UIDVALIDITY.

    UIDs only mean something together with the folder's UIDVALIDITY. When a folder is
    recreated (UIDVALIDITY changes), its messages get new UIDs and often lose their
    ``\\Seen`` flag; the Message-ID is then the identity that tells which of them were
    handed over already. Every message that was in the folder when the change was noticed
    (UID below the UIDNEXT of that moment) is checked; later mail is new by definition.
    Kept in the Variable
    ``mail_provider/imap_delivered/<conn_id>/<login>@<host>:<port>/<folder>``.
    """

    KEEP = 5000

    def __init__(self, store: KeyValueStore, *, conn_id: str, account: str, folder: str) -> None:
        self.store = store
        self.key = f"{PREFIX}/imap_delivered/{conn_id}/{account}/{folder}"
        # Read when first asked: remember() reads afresh under the lock anyway, so a
        # hand-over that only records (not unseen_only) reads the Variable once.
        self._loaded = False
        self.uidvalidity: int | None = None
        self.message_ids: list[str] = []
        self.check_below_uid = 0

    def _load(self, value: dict[str, Any]) -> None:
        self._loaded = True
        self.uidvalidity = value.get("uidvalidity")
        self.message_ids = list(value.get("message_ids", []))
        self.check_below_uid = int(value.get("check_below_uid", 0))

    def _read(self) -> None:
        if not self._loaded:
            self._load(self.store.get(self.key) or {})

    def folder_was_recreated(self, uidvalidity: int | None) -> bool:
        """Whether ``uidvalidity`` differs from the one of the last hand-over."""
        self._read()
        return self.uidvalidity is not None and self.uidvalidity != uidvalidity

    def start_checking(self, uidvalidity: int | None, uid_next: int) -> None:
        """The folder was recreated: check every message below ``uid_next`` from now on."""
        with variable_lock(self.key):
            self._load(self.store.get(self.key) or {})
            if self.uidvalidity != uidvalidity:  # another hand-over may have noticed first
                self.uidvalidity = uidvalidity
                self.check_below_uid = uid_next
                self._save()

    def suspects(self, uids: tuple[int, ...]) -> list[int]:
        """The UIDs that may be messages handed over before the folder was recreated."""
        self._read()
        return [uid for uid in uids if uid < self.check_below_uid]

    def remember(self, uidvalidity: int | None, message_ids: list[str]) -> None:
        """Record a completed hand-over (merged with what others recorded meanwhile)."""
        with variable_lock(self.key):
            self._load(self.store.get(self.key) or {})
            known = set(self.message_ids)
            fresh = [message_id for message_id in message_ids if message_id not in known]
            if uidvalidity == self.uidvalidity and not fresh:
                return
            self.uidvalidity = uidvalidity
            self.message_ids = (self.message_ids + fresh)[-self.KEEP :]
            self._save()

    def _save(self) -> None:
        self.store.set(
            self.key,
            {
                "uidvalidity": self.uidvalidity,
                "message_ids": self.message_ids,
                "check_below_uid": self.check_below_uid,
            },
        )


class AssetDeliveries:
    """Which DAG run handed over each message an AssetWatcher event named.

    An AssetWatcher event can repeat (a triggerer killed between emitting and clearing its
    pending mark), and each event starts a DAG run. The run that reads a message first
    records it here before reading; a run started by a repeated event then skips it,
    while a retry of the first run (same ``run_id``) gets it again. Kept in the Variable
    ``mail_provider/asset_delivered/<conn_id>/<login>@<host>:<port>/<folder>``, the last
    :attr:`KEEP` messages.
    """

    KEEP = 5000

    def __init__(self, store: KeyValueStore, *, conn_id: str, account: str, folder: str) -> None:
        self.store = store
        self.key = f"{PREFIX}/asset_delivered/{conn_id}/{account}/{folder}"

    def take(self, ids: list[str], uidvalidity: int | None, run_id: str) -> list[str]:
        """Of ``ids`` (UIDs or UIDLs as text), the ones ``run_id`` may hand over; recorded."""
        with variable_lock(self.key):
            value = self.store.get(self.key) or {}
            runs: dict[str, str] = dict(value.get("runs", {}))
            if value.get("uidvalidity") != uidvalidity:
                runs = {}  # new UIDVALIDITY: the old UIDs name nothing any more
            mine = [message for message in ids if runs.get(message, run_id) == run_id]
            for message in mine:
                runs.pop(message, None)
                runs[message] = run_id
            self.store.set(
                self.key,
                {"uidvalidity": uidvalidity, "runs": dict(list(runs.items())[-self.KEEP :])},
            )
        return mine


class OwedGiveBacks:
    """Claims a failed hand-over could not give back, so the next poll gives them back first.

    A read that fails after the take (the server stalls or drops inside the FETCH) gives
    the messages back over a fresh session; when even that fails (the server is gone for
    now), the claim is written here, and the next hand-over of the same connection and
    account gives it back before it polls. Without this, the taken messages would stay
    ``\\Seen`` (IMAP) or in the seen set (POP3) and ``unseen_only`` polls would never
    return them. Kept in the Variable ``mail_provider/give_back/<conn_id>/<account>``, at
    most :attr:`KEEP` claims.
    """

    KEEP = 100

    def __init__(self, store: KeyValueStore, *, conn_id: str, account: str) -> None:
        self.store = store
        self.key = f"{PREFIX}/give_back/{conn_id}/{account}"

    def claims(self) -> list[dict[str, Any]]:
        """The owed claims (payloads of :class:`~airflow_provider_mail.mail.state.Claim`)."""
        value = self.store.get(self.key)
        return [entry for entry in value or [] if isinstance(entry, dict)]

    def add(self, payload: dict[str, Any]) -> None:
        """Owe the give-back of one claim."""
        update(self.store, self.key, lambda value: ([*(value or []), payload])[-self.KEEP :])

    def settled(self, payloads: list[dict[str, Any]]) -> None:
        """These claims were given back (or name nothing any more): forget them."""
        done = [json.dumps(payload, sort_keys=True) for payload in payloads]
        update(
            self.store,
            self.key,
            lambda value: [e for e in value or [] if json.dumps(e, sort_keys=True) not in done],
        )


@dataclass
class Stores:
    """The hand-over state of one connection and account, in one key-value store.

    ``optional``: the store may be unreachable, as Airflow Variables are for a hook used
    in a plain script; the state is then skipped (nothing can have been recorded there).
    """

    store: KeyValueStore
    conn_id: str
    account: str
    optional: bool = False
    _available: bool | None = field(default=None, init=False, repr=False)

    def available(self) -> bool:
        """Whether the state can be read and written here (asked once)."""
        if self._available is None:
            self._available = (
                not self.optional
                or not isinstance(self.store, VariableStore)
                or variables_reachable()
            )
        return self._available

    def delivered(self, folder: str) -> DeliveredMessageIds | None:
        """The Message-IDs handed over from ``folder``; ``None`` when unavailable."""
        if not self.available():
            return None
        return DeliveredMessageIds(
            self.store, conn_id=self.conn_id, account=self.account, folder=folder
        )

    def owed(self) -> OwedGiveBacks | None:
        """The give-backs still owed; ``None`` when unavailable."""
        if not self.available():
            return None
        return OwedGiveBacks(self.store, conn_id=self.conn_id, account=self.account)

    def asset_deliveries(self, folder: str) -> AssetDeliveries:
        """Which DAG run handed over each message of ``folder`` (AssetWatcher events)."""
        return AssetDeliveries(
            self.store, conn_id=self.conn_id, account=self.account, folder=folder
        )
