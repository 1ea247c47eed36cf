"""What the three mail hooks share: settings from the connection, errors, sessions."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Generic, TypeVar

from airflow_provider_mail.compat import BaseHook
from airflow_provider_mail.exceptions import MailError, MailStorageError
from airflow_provider_mail.hooks.oauth2 import due as token_due
from airflow_provider_mail.hooks.oauth2 import seconds_left as token_seconds_left
from airflow_provider_mail.hooks.oauth2 import sign_in
from airflow_provider_mail.mail import params
from airflow_provider_mail.mail.attachments import (
    AttachmentSink,
    DirectorySink,
    UnsafeDirectoryError,
    default_attachments_dir,
)
from airflow_provider_mail.mail.errors import describe_network_error
from airflow_provider_mail.mail.oauth2 import AccessToken
from airflow_provider_mail.mail.parse import build_record
from airflow_provider_mail.mail.settings import ServerSettings, settings_from_connection
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.masking import connection_extra, register_short_choices
from airflow_provider_mail.storage import (
    AssetDeliveries,
    DeliveredMessageIds,
    KeyValueStore,
    OwedGiveBacks,
    VariableStore,
    variables_reachable,
)

register_short_choices()  # tasks and triggers read connections: see masking.py

ClientT = TypeVar("ClientT")
HookT = TypeVar("HookT", bound="MailHook[Any]")


class MailHook(BaseHook, Generic[ClientT]):
    """Base class of :class:`ImapHook`, :class:`Pop3Hook` and :class:`SmtpHook`.

    A hook reads its Airflow connection lazily and is a context manager that keeps one
    authenticated session open across calls::

        with ImapHook("mail_imap_default") as hook:
            hook.receive(unseen_only=True)

    :param conn_id: the Airflow connection to use.
    :param connection: an already loaded connection (used by triggers, which must load
        connections with the async API); when given, ``conn_id`` is only used in messages.
    """

    conn_name_attr = "conn_id"
    conn_type = ""
    default_conn_name = ""
    hook_name = ""
    protocol = ""
    probe_description = ""

    def __init__(self, conn_id: str | None = None, *, connection: Any = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._connection = connection
        self._settings: ServerSettings | None = None
        self._client: ClientT | None = None
        #: The OAuth access token the open session signed in with (``None``: password).
        self._session_token: AccessToken | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the standard fields for email (also declared in the provider info)."""
        from airflow_provider_mail.get_provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @property
    def settings(self) -> ServerSettings:
        """The connection's server settings, read once."""
        if self._settings is None:
            conn = self._connection or self.get_connection(self.conn_id)
            self._settings = settings_from_connection(
                self.protocol,
                conn_id=self.conn_id,
                host=conn.host,
                port=conn.port,
                login=conn.login,
                password=conn.password,
                extra=connection_extra(conn),
            )
        return self._settings

    @property
    def client(self) -> ClientT:
        """The open session, opened on first use."""
        if self._client is None:
            self._client = self._open_session()
        return self._client

    def get_conn(self) -> ClientT:
        """The open session (Airflow's usual hook API)."""
        return self.client

    def _open_session(self) -> ClientT:
        settings = self.settings
        with self.translate_errors():
            return self._open(settings)

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn any network or TLS error raised inside into a one-sentence MailError."""
        try:
            yield
        except MailError:
            raise
        except Exception as err:
            raise describe_network_error(err, self.settings) from err

    def sign_in_with_token(
        self, settings: ServerSettings, offered: Iterable[str], exchange: Callable[[str, str], None]
    ) -> None:
        """OAuth 2.0 sign-in of a new session (see :func:`.oauth2.sign_in`)."""
        self._session_token = sign_in(settings, offered, exchange)

    def renew_if_due(self) -> None:
        """Between polls: close a session whose OAuth token is due, so the next call opens
        one with a fresh token before the server could drop it (Microsoft 365 ends IMAP
        sessions whose token expired); a password session is kept."""
        if self._client is not None and token_due(self._session_token):
            self.log.info(
                "Signing in to %s again: the session's access token expires soon.",
                self.settings.address,
            )
            self.close()

    def session_seconds_left(self) -> float | None:
        """Seconds until the open session's OAuth token is due; ``None``: no limit."""
        return token_seconds_left(self._session_token)

    def close(self) -> None:
        """End the session politely; errors while closing are not worth failing a task."""
        client, self._client = self._client, None
        self._session_token = None
        if client is not None:
            self._abandon(client)

    def _abandon(self, client: ClientT) -> None:
        with contextlib.suppress(Exception):
            self._close(client)

    def __enter__(self: HookT) -> HookT:
        _ = self.client
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Connect, negotiate TLS, log in and run one harmless command.

        The Test button of the Airflow UI and ``airflow connections test`` call this.
        Returns ``(True, what was checked)`` or ``(False, one sentence saying what failed
        and what to change)``. The message never contains the password.
        """
        try:
            with self, self.translate_errors():
                self._probe(self.client)
        except MailError as err:
            return False, str(err)
        settings = self.settings
        who = f"as {settings.login!r}" if settings.login else "without logging in"
        if settings.oauth2 is not None:
            who += f" (OAuth 2.0, {settings.oauth2.grant} grant)"
        return True, (
            f"Connected to {settings.address} ({settings.security.value}) {who} and "
            f"{self.probe_description}."
        )

    def _open(self, settings: ServerSettings) -> ClientT:
        raise NotImplementedError

    def _close(self, client: ClientT) -> None:
        raise NotImplementedError

    def _probe(self, client: ClientT) -> None:
        raise NotImplementedError


class ReceiveHook(MailHook[ClientT]):
    """What :class:`ImapHook` and :class:`Pop3Hook` share: one poll, split in three steps.

    ``find_new`` decides which messages a poll takes (nothing is read or changed),
    ``fetch`` reads them into records without changing any flag, and ``mark_seen``
    records the hand-over. The sensor and the trigger call the steps separately so that a
    crash between them never loses a message; :meth:`receive` runs all three.
    """

    #: Whether an open session notices mail that arrives later (IMAP does; a POP3
    #: session sees the mailbox as it was at login).
    session_sees_new_mail = True

    def receive(
        self,
        folder: str | None = None,
        unseen_only: bool = False,
        max_emails: int = 5,
        attachments_dir: str | None = None,
    ) -> list[dict[str, Any]]:
        """One poll with the sensor's semantics; returns message records, oldest first.

        :param folder: the folder to read; ``None`` or empty: the inbox.
        :param unseen_only: only messages not seen yet (IMAP ``\\Seen`` flag; for POP3,
            the unique ids this provider already handed over from the account).
        :param max_emails: at most this many messages, the oldest first; ``-1``: all.
        :param attachments_dir: where attachments are written (a directory or an Airflow
            object-storage URL); default: a new folder under the system temp directory.

        The returned messages count as seen afterwards::

            with ImapHook("mail_imap_default") as hook:
                for record in hook.receive(unseen_only=True, max_emails=10):
                    print(record["subject"], record["from"])
        """
        params.check_folder(folder)
        params.check_bool(unseen_only, "unseen_only")
        params.check_max_emails(max_emails)
        params.check_attachments_dir(attachments_dir)
        with self._session():  # find_new checks the folder before any I/O
            self.check_folder(folder)
            self.settle_give_backs()
            claim = self.find_new(folder, unseen_only, max_emails)
            delivered = self._readable_delivered_ids(claim)
            if unseen_only:
                claim = self.without_repeats(self.claim(claim), delivered)
            if not claim:
                return []
            try:
                records = self.fetch(claim, _sink(attachments_dir))
            except BaseException:
                # Nothing was handed over: what this poll took must be there for the next.
                self.give_back(claim)
                raise
            if not unseen_only:
                self.mark_seen(claim)  # with unseen_only, taking them marked them already
            if delivered is not None:
                try:
                    delivered.remember(
                        claim.uidvalidity, [r["message_id"] for r in records if r["message_id"]]
                    )
                except Exception as err:
                    # Outside Airflow (no metadata database) there is nothing to remember in.
                    self.log.debug("Delivered Message-IDs not recorded (%s).", type(err).__name__)
            return records

    def _readable_delivered_ids(self, claim: Claim) -> DeliveredMessageIds | None:
        """:meth:`delivered_ids`, or ``None`` outside Airflow (no Variables to read)."""
        return self.delivered_ids(claim) if variables_reachable() else None

    def delivered_ids(self, claim: Claim) -> DeliveredMessageIds | None:
        """The Message-IDs handed over from the claim's folder (IMAP; ``None`` for POP3)."""
        return None

    def without_repeats(self, claim: Claim, delivered: DeliveredMessageIds | None) -> Claim:
        """The claim without messages handed over before their folder was recreated."""
        return claim

    def fetch_claimed(
        self,
        payload: Mapping[str, Any],
        attachments_dir: str | None = None,
        *,
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The records of the messages a :class:`ReceiveEmailTrigger` event names.

        For DAGs started by an ``AssetWatcher``: the asset event's ``extra["payload"]`` is
        the trigger's payload (folder, UIDVALIDITY, UIDs or UIDLs); the trigger already
        marked those messages seen, so this only reads them. Pass the DAG run's
        ``run_id`` so that a repeated event (possible after a triggerer crash) does not
        hand the same message to a second run; a retry of the same run still gets it::

            @task
            def read(triggering_asset_events=None, run_id=None):
                with ImapHook("mail_imap_default") as hook:
                    return [r for event in triggering_asset_events[inbox]
                            for r in hook.fetch_claimed(event.extra["payload"], run_id=run_id)]
        """
        claim = Claim.from_payload(payload)
        if run_id is not None:
            claim = self._not_handed_over_elsewhere(claim, run_id)
        with self._session():
            return self.fetch(claim, _sink(attachments_dir))

    def _not_handed_over_elsewhere(self, claim: Claim, run_id: str) -> Claim:
        deliveries = AssetDeliveries(
            VariableStore(),
            conn_id=self.conn_id,
            account=self.settings.account,
            folder=claim.folder,
        )
        ids = [str(uid) for uid in claim.uids] or list(claim.uidls)
        mine = set(deliveries.take(ids, claim.uidvalidity, run_id))
        skipped = len(ids) - len(mine)
        if skipped:
            self.log.info("%d message(s) were handed over by another run already.", skipped)
        return Claim(
            claim.protocol,
            claim.folder,
            claim.uidvalidity,
            uids=tuple(uid for uid in claim.uids if str(uid) in mine),
            uidls=tuple(uidl for uidl in claim.uidls if uidl in mine),
        )

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Inside ``with hook:`` the hook's session; otherwise one just for this call."""
        opened_here = self._client is None
        try:
            yield
        finally:
            if opened_here:
                self.close()

    def build(
        self, raw: bytes, claim: Claim, attachments: AttachmentSink, **ids: Any
    ) -> dict[str, Any]:
        """One message record; a failed attachment write is one clear MailStorageError."""
        try:
            return build_record(raw, folder=claim.folder, attachments=attachments, **ids)
        except UnsafeDirectoryError as err:
            raise MailStorageError(str(err)) from err
        except Exception as err:
            reason = getattr(err, "strerror", None) or type(err).__name__
            raise MailStorageError(
                f"An attachment of a message in {claim.folder} could not be written ({reason}); "
                "check that attachments_dir exists, is writable and has space."
            ) from err

    def unclaim(self, claim: Claim) -> bool:
        """Give a claim back after its hand-over failed; whether that worked (best effort).

        A claim whose UIDs name nothing any more (the folder was recreated) counts as given
        back: there is nothing left to give.
        """
        raise NotImplementedError

    #: Where owed give-backs are written; ``None``: Airflow Variables.
    owed_store: KeyValueStore | None = None

    def _owed(self) -> OwedGiveBacks:
        return OwedGiveBacks(
            self.owed_store or VariableStore(),
            conn_id=self.conn_id,
            account=self.settings.account,
        )

    def give_back(self, claim: Claim) -> bool:
        """Give back what a failed hand-over took, so that the next poll returns it.

        The read that failed has often broken the session (the server stalled or dropped
        inside the FETCH), so a failed give-back is tried again over a fresh session; when
        that fails too, the claim is written to Airflow's storage and the next hand-over
        of this connection gives it back before polling (:meth:`settle_give_backs`).
        Returns whether the messages are back now. Never raises: the caller is already
        failing with the error that matters.
        """
        if not claim:
            return True
        if self.unclaim(claim):
            return True
        self.close()  # the session may be dead; the next call opens a fresh one
        if self.unclaim(claim):
            return True
        try:
            self._owed().add(claim.to_payload())
        except Exception as err:
            self.log.error(
                "%d message(s) taken from %s could not be given back nor recorded (%s); "
                "clear their Seen flag by hand so that unseen_only polls return them.",
                len(claim),
                claim.folder,
                type(err).__name__,
            )
            return False
        self.log.warning(
            "%d message(s) taken from %s could not be given back now; the next poll of %s "
            "gives them back first.",
            len(claim),
            claim.folder,
            self.conn_id,
        )
        return False

    def settle_give_backs(self) -> None:
        """Give back what earlier failed hand-overs of this connection still owe."""
        owed = self._owed()
        if isinstance(owed.store, VariableStore) and not variables_reachable():
            return  # outside Airflow nothing can have been owed
        payloads = [p for p in owed.claims() if p.get("protocol") == self.protocol]
        if not payloads:
            return
        done = [p for p in payloads if self.unclaim(Claim.from_payload(p))]
        if done:
            owed.settled(done)
            self.log.info(
                "Gave back %d message(s) that an earlier failed hand-over had taken.",
                sum(len(Claim.from_payload(p)) for p in done),
            )

    def check_folder(self, folder: str | None) -> None:
        """Raise MailConfigError when this protocol cannot read ``folder``."""

    def find_new(self, folder: str | None, unseen_only: bool, max_emails: int) -> Claim:
        """The messages one poll takes; nothing is read or changed."""
        raise NotImplementedError

    def fetch(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """The claimed messages as records, oldest first; flags unchanged."""
        raise NotImplementedError

    def mark_seen(self, claim: Claim) -> None:
        """Remember that the claimed messages were handed over."""
        raise NotImplementedError

    def supports_idle(self) -> bool:
        """Whether the server can push news of new mail (IMAP IDLE)."""
        return False

    def wait_for_news(self, timeout: float) -> bool:
        """Block until the server reports a change of the selected folder, or ``timeout``."""
        raise NotImplementedError

    def claim(
        self,
        claim: Claim,
        *,
        pending: bool = False,
        before_take: Callable[[Claim], None] | None = None,
    ) -> Claim:
        """Take the claimed messages against other pollers; returns the ones now owned.

        ``before_take`` is called, while no other poller can take any of them, with the
        messages about to be taken, before they are: a hand-over records them there, so
        that its retry knows which messages were reserved for it.
        """
        raise NotImplementedError

    def find_pending(self, folder: str | None) -> Claim:
        """Messages claimed by a trigger that may have died before its event went out."""
        return Claim(self.protocol, folder or "INBOX")

    def release_pending(self, claim: Claim) -> None:
        """The claim's event went out."""


def _sink(attachments_dir: str | None) -> DirectorySink:
    """Where one call's attachments go: ``attachments_dir`` or a new temp folder."""
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    return DirectorySink(attachments_dir or default_attachments_dir("receive", stamp))
