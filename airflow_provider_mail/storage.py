"""Durable state in Airflow's own storage (Variables), visible to every worker and triggerer.

Four kinds of state live here, as JSON Variables whose keys start with ``mail_provider/``
(on Airflow 3.0 with ``:`` for every ``/``, see :func:`~airflow_provider_mail.compat.variable_key`):

* ``mail_provider/pop3_seen/<conn_id>/<login>@<host>:<port>``: the POP3 unique ids
  (UIDL) already handed over from that account. Delete the Variable to receive every
  message again.
* ``mail_provider/pop3_pending/<conn_id>/<login>@<host>:<port>``: POP3 unique ids an
  AssetWatcher trigger took whose event may not have gone out yet.
* ``mail_provider/handover/<dag_id>/<task_id>``: the last claims of a
  ``ReceiveEmailSensor`` per run, so that a retry after a crash delivers the same messages
  instead of losing them. Deleting it is safe when no run of that task is in progress.
* ``mail_provider/sent/<dag_id>/<task_id>``: which emails of a ``SendEmailOperator`` run
  went out before a try failed, so that its retry does not send them twice.
* ``mail_provider/imap_delivered/...``: see :class:`DeliveredMessageIds`.
* ``mail_provider/give_back/<conn_id>/<login>@<host>:<port>``: messages taken by a poll
  whose read failed and that could not be given back then; see :class:`OwedGiveBacks`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from airflow_provider_mail.compat import variable_key
from airflow_provider_mail.locks import host_lock

PREFIX = "mail_provider"


class KeyValueStore(Protocol):
    """Where the provider keeps small JSON values durably."""

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or ``None``."""

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key``."""


class VariableStore:
    """Airflow Variables: through the Task SDK inside tasks and triggers, else the database."""

    def get(self, key: str) -> Any:
        """The JSON value of the Variable ``key``, or ``None`` when it does not exist."""
        # The default is positional: the SDK calls it ``default``, the models ``default_var``.
        raw = _variables().get(variable_key(key), None)
        if raw in (None, ""):
            return None
        return json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` as JSON in the Variable ``key``."""
        _variables().set(variable_key(key), json.dumps(value, sort_keys=True))


class MemoryStore:
    """A process-local store, for hooks used outside Airflow and for tests."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or ``None``."""
        raw = self._values.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON round-tripped, as a Variable would be)."""
        self._values[key] = json.dumps(value)


@contextlib.contextmanager
def variable_lock(key: str) -> Iterator[None]:
    """One read-modify-write of the Variable ``key`` at a time on this host."""
    with host_lock("variable", key):
        yield


def update(store: KeyValueStore, key: str, change: Callable[[Any], Any]) -> None:
    """Write ``change(value)`` over the value of ``key`` (``None`` when absent), atomically
    against every other update of ``key`` on this host."""
    with variable_lock(key):
        store.set(key, change(store.get(key)))


def variables_reachable() -> bool:
    """Whether Airflow Variables can be used here: inside a task or the triggerer, or with
    a metadata database that has its tables (a script next to a deployment).

    Hooks used outside Airflow skip what needs Variables instead of logging an error per
    poll. Only a positive answer could be cached safely, so none is.
    """
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        return True
    try:
        from airflow import settings
        from sqlalchemy import inspect

        return bool(settings.engine is not None and inspect(settings.engine).has_table("variable"))
    except Exception:
        return False


def _variables() -> Any:
    """The Variable API that works where this code runs.

    Inside a task or the triggerer, the Task SDK talks to Airflow's API server; a script
    or the CLI has no such channel and uses the metadata database directly.
    """
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        from airflow.sdk import Variable

        return Variable
    from airflow.models import Variable as DatabaseVariable

    return DatabaseVariable


def pop3_seen_key(conn_id: str, account: str) -> str:
    """The Variable key of one POP3 account's seen UIDLs."""
    return f"{PREFIX}/pop3_seen/{conn_id}/{account}"


def pop3_pending_key(conn_id: str, account: str) -> str:
    """The Variable key of one POP3 account's UIDLs claimed by an AssetWatcher trigger."""
    return f"{PREFIX}/pop3_pending/{conn_id}/{account}"


#: Ledger entries with this key set name messages the task took (or was about to take while
#: no other poller could): its retry delivers all of them.
RESERVED = "reserved"


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
