"""What the three mail hooks share: settings from the connection, errors, sessions."""

from __future__ import annotations

import contextlib
import functools
import ssl
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Generic, TypeVar

from airflow_provider_mail.compat import BaseHook
from airflow_provider_mail.exceptions import MailConfigError, MailError, MailStorageError
from airflow_provider_mail.handover.actions import (
    MARK_SEEN_ACTION,
    Action,
    HandedOverSet,
    act,
    after_receive,
    check_before_touching,
)
from airflow_provider_mail.handover.engine import HandOver
from airflow_provider_mail.handover.ledger import Ledger
from airflow_provider_mail.handover.mailbox import Exclude, Mailbox, Poll
from airflow_provider_mail.handover.state import Stores
from airflow_provider_mail.hooks.oauth2 import due as token_due
from airflow_provider_mail.hooks.oauth2 import seconds_left as token_seconds_left
from airflow_provider_mail.hooks.oauth2 import sign_in
from airflow_provider_mail.keyvalue import KeyValueStore, VariableStore
from airflow_provider_mail.mail import params
from airflow_provider_mail.mail.attachments import (
    AttachmentSink,
    DirectorySink,
    UnsafeDirectoryError,
    default_attachments_dir,
)
from airflow_provider_mail.mail.errors import (
    describe_network_error,
    login_rejected,
    password_not_ascii,
    starttls_not_offered,
)
from airflow_provider_mail.mail.oauth2 import AccessToken
from airflow_provider_mail.mail.parse import build_record
from airflow_provider_mail.mail.search import SearchCriteria
from airflow_provider_mail.mail.settings import ServerSettings, settings_from_connection
from airflow_provider_mail.mail.state import Claim, claim_of
from airflow_provider_mail.mail.tls import Security, build_ssl_context
from airflow_provider_mail.masking import connection_extra, register_short_choices

register_short_choices()  # tasks and triggers read connections: see masking.py

#: How long an AssetWatcher trigger trusts its copy of a handed-over set between polls;
#: its own takes refresh it at once, so this only bounds how late it notices a give-back
#: by another poller of the same folder.
WATCHED_SET_REFRESH_SECONDS = 60.0

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
        """Connect, STARTTLS when asked, sign in: the one sequence of all three protocols.

        ``starttls`` never falls back to plain text: a server that does not offer it is an
        error. Each protocol supplies the commands (:meth:`_connect`, :meth:`_starttls`...).
        """
        context = build_ssl_context(settings.server_certificate)
        client = self._connect(settings, context)
        try:
            self._greet(client)
            if settings.security is Security.STARTTLS:
                if not self._offers_starttls(client):
                    raise starttls_not_offered(settings)
                self._starttls(client, context)
            if settings.oauth2 is not None:
                offered = self._sasl_mechanisms(client, settings)
                self.sign_in_with_token(settings, offered, self._sasl_exchange(client))
                self._signed_in(client)
            elif settings.login:
                try:
                    self._login(client, settings)
                except self.login_refused as err:
                    raise login_rejected(settings) from err
                except UnicodeEncodeError:
                    raise password_not_ascii(settings) from None
                self._signed_in(client)
        except BaseException:
            self._abandon(client)
            raise
        return client

    #: What the protocol's library raises when the server refuses a user name and password.
    login_refused: tuple[type[BaseException], ...] = ()

    #: The library's plain and implicit-TLS client classes, when their constructors take
    #: ``(host, port, timeout=...)`` and ``(..., context=...)`` (poplib, smtplib).
    client_classes: tuple[Any, Any] = (None, None)

    def _connect(self, settings: ServerSettings, context: ssl.SSLContext) -> ClientT:
        """A connected client (implicit TLS with ``context`` for Security Method ``ssl``)."""
        plain, implicit_tls = self.client_classes
        client: ClientT
        if settings.security is Security.SSL:
            client = implicit_tls(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = plain(settings.host, settings.port, timeout=settings.timeout)
        return client

    def _greet(self, client: ClientT) -> None:
        """What the protocol says first after connecting (SMTP: ``EHLO``)."""

    def _offers_starttls(self, client: ClientT) -> bool:
        raise NotImplementedError

    def _starttls(self, client: ClientT, context: ssl.SSLContext) -> None:
        raise NotImplementedError

    def _sasl_mechanisms(self, client: ClientT, settings: ServerSettings) -> list[str]:
        """The SASL mechanisms the server offers (for OAuth 2.0)."""
        raise NotImplementedError

    def _sasl_exchange(self, client: ClientT) -> Callable[[str, str], None]:
        """``exchange(mechanism, initial response)``: one SASL authentication."""
        raise NotImplementedError

    def _login(self, client: ClientT, settings: ServerSettings) -> None:
        """Sign in with the user name and password."""
        raise NotImplementedError

    def _signed_in(self, client: ClientT) -> None:
        """After a successful sign-in (IMAP: cache the new capabilities)."""

    def _close(self, client: ClientT) -> None:
        raise NotImplementedError

    def _probe(self, client: ClientT) -> None:
        raise NotImplementedError


class ReceiveHook(MailHook[ClientT]):
    """What :class:`ImapHook` and :class:`Pop3Hook` share: a session that finds and reads mail.

    ``find_new`` decides which messages a poll takes (nothing is read or changed) and
    ``fetch`` reads them into records without changing any flag. Everything that makes a
    hand-over exactly-once (taking, marking, giving back, the ledger) is the hand-over
    engine's (:mod:`airflow_provider_mail.handover`), which works on the hook's
    :attr:`mailbox`; :meth:`receive` and :meth:`fetch_claimed` run it.
    """

    #: Whether an open session notices mail that arrives later (IMAP does; a POP3
    #: session sees the mailbox as it was at login).
    session_sees_new_mail = True

    #: Where the hand-over keeps its state for this connection; ``None``: Airflow Variables.
    state_store: KeyValueStore | None = None

    _mailbox: Mailbox | None = None

    @functools.cached_property
    def _watched_sets(self) -> dict[str, HandedOverSet]:
        """An AssetWatcher trigger's handed-over sets, per folder, kept between polls."""
        return {}

    def receive(
        self,
        folder: str | None = None,
        unseen_only: bool = False,
        max_emails: int = 5,
        attachments_dir: str | None = None,
        *,
        after_receive: str = "mark_seen",
        move_to: str | None = None,
        search: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """One poll with the sensor's semantics; returns message records, oldest first.

        :param folder: the folder to read; ``None`` or empty: the inbox.
        :param unseen_only: only messages not seen yet (IMAP ``\\Seen`` flag; for POP3,
            the unique ids this provider already handed over from the account).
        :param max_emails: at most this many messages, the oldest first; ``-1``: all.
        :param attachments_dir: where attachments are written (a directory or an Airflow
            object-storage URL); default: a new folder under the system temp directory.
        :param after_receive: what happens to the returned messages, as for the sensor:
            ``"mark_seen"`` (default), ``"leave_unread"``, ``"move"`` (to ``move_to``) or
            ``"delete"``. Here ``move`` and ``delete`` happen before this returns (no task
            to wait for: docs/mailbox_actions.md).
        :param move_to: the folder of ``after_receive="move"`` (IMAP).
        :param search: only messages matching all these criteria, e.g.
            ``{"from": "billing@vendor.example", "since": "2026-01-01"}``
            (docs/mailbox_actions.md).

        The returned messages count as seen afterwards::

            with ImapHook("mail_imap_default") as hook:
                for record in hook.receive(unseen_only=True, max_emails=10):
                    print(record["subject"], record["from"])
        """
        params.check_folder(folder)
        params.check_bool(unseen_only, "unseen_only")
        params.check_max_emails(max_emails)
        params.check_attachments_dir(attachments_dir)
        action = Action(*params.check_after_receive(after_receive, move_to))
        params.check_move_target(folder, action.move_to)
        criteria = params.check_search(search)
        with self._session():
            self.check_folder(folder)  # before any I/O
            params.check_for_protocol(self.protocol, action.name, criteria)
            handover = self.handover(action=action, immediate=True)
            check_before_touching(self.mailbox, action)
            return handover.receive(
                Poll(folder, unseen_only, max_emails, search=criteria), _sink(attachments_dir)
            )

    def fetch_claimed(
        self,
        payload: Mapping[str, Any],
        attachments_dir: str | None = None,
        *,
        run_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The records of the messages a :class:`ReceiveEmailTrigger` event names.

        For DAGs started by an ``AssetWatcher``: the asset event's ``extra["payload"]`` is
        the trigger's payload (folder, UIDVALIDITY, UIDs or UIDLs, and the trigger's
        ``after_receive``); the trigger already took those messages, so this reads them.
        Pass the DAG run's ``run_id`` so that a repeated event (possible after a triggerer
        crash) does not hand the same message to a second run; a retry of the same run
        still gets it (inside a task, the run's ``run_id`` is the default)::

            @task
            def read(triggering_asset_events=None, run_id=None):
                with ImapHook("mail_imap_default") as hook:
                    return [r for event in triggering_asset_events[inbox]
                            for r in hook.fetch_claimed(event.extra["payload"], run_id=run_id)]

        With the trigger's ``after_receive="move"`` or ``"delete"``, the messages are moved
        or deleted once the task calling this has succeeded (Airflow stored its result),
        never before; a worker killed in between leaves it owed, and the task's next run
        does it (docs/mailbox_actions.md). Outside a task (``context`` ``None`` and no
        running task) there is nothing to wait for: they are moved or deleted right after
        they are read, as :meth:`receive` does.
        """
        from airflow_provider_mail.handover.owed import AssetOwedActions, current_task_context

        claim = Claim.from_payload(payload)
        action = Action(
            *params.check_after_receive(
                payload.get("after_receive", "mark_seen"), payload.get("move_to")
            )
        )
        if context is None:
            context = current_task_context()
        if run_id is None and context is not None:
            run_id = context["ti"].run_id
        sink = _sink(attachments_dir)
        with self._session():
            handover = self.handover(state_required=True, action=action)
            if not action.irreversible:
                return handover.fetch_claimed(claim, sink, run_id=run_id)
            params.check_for_protocol(self.protocol, action.name, None)
            check_before_touching(self.mailbox, action)
            if context is None:
                records = handover.fetch_claimed(claim, sink, run_id=run_id)
                act(self.mailbox, claim_of(records), action)
                return records
            owed = AssetOwedActions.for_asset_task(context, self.conn_id, claim.folder, self.log)
            owed.settle_earlier_runs(self.mailbox, handover.after, context)
            records = handover.fetch_claimed(claim, sink, run_id=run_id)
            owed.owe(records, action)
        if records:
            owed.after_task_success(context, self._fresh_copy)
        return records

    def _fresh_copy(self) -> ReceiveHook[ClientT]:
        """A hook of the same connection and state store, with a session of its own."""
        copy = type(self)(self.conn_id, connection=self._connection)
        copy._settings = self._settings
        copy.state_store = self.state_store
        return copy

    @property
    def mailbox(self) -> Mailbox:
        """This hook's session as the hand-over engine sees it (take, read, mark...)."""
        if self._mailbox is None:
            self._mailbox = self._new_mailbox()
        return self._mailbox

    def handover(
        self,
        *,
        ledger: Ledger | None = None,
        state_required: bool = False,
        action: Action = MARK_SEEN_ACTION,
        immediate: bool = False,
        watching: bool = False,
    ) -> HandOver:
        """The hand-over engine over this hook's session.

        :param ledger: the sensor task instance's ledger; default: none to inform.
        :param state_required: the connection's hand-over state must be reachable (inside
            Airflow); otherwise a hook used in a plain script skips it.
        :param action: ``after_receive`` and ``move_to``.
        :param immediate: move or delete right after the read (a hook's own ``receive``);
            the sensor does it once its task instance succeeded.
        :param watching: an AssetWatcher trigger's polls: the handed-over sets are kept on
            this hook between polls (:class:`HandedOverSet` ``refresh_seconds``).
        """
        store = self.state_store or VariableStore()
        stores = Stores(
            store,
            conn_id=self.conn_id,
            account=self.settings.account,
            optional=not state_required,
        )
        if action.name != MARK_SEEN_ACTION.name and not stores.available():
            raise MailConfigError(
                f"after_receive={action.name!r} remembers what was handed over in Airflow "
                "Variables, which cannot be reached here; run it inside Airflow or set the "
                "hook's state_store."
            )

        def handed_over_set(folder: str) -> HandedOverSet:
            kept = self._watched_sets.get(folder) if watching else None
            if kept is None:
                kept = HandedOverSet(
                    store,
                    conn_id=self.conn_id,
                    account=self.settings.account,
                    folder=folder,
                    refresh_seconds=WATCHED_SET_REFRESH_SECONDS if watching else None,
                )
                if watching:
                    self._watched_sets[folder] = kept
            return kept

        after = after_receive(action, self.protocol, handed_over_set, immediate=immediate)
        return HandOver(self.mailbox, ledger=ledger, stores=stores, after=after, log=self.log)

    def _new_mailbox(self) -> Mailbox:
        raise NotImplementedError

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

    def check_folder(self, folder: str | None) -> None:
        """Raise MailConfigError when this protocol cannot read ``folder``."""

    def find_new(
        self,
        folder: str | None,
        unseen_only: bool,
        max_emails: int,
        *,
        search: SearchCriteria | None = None,
        exclude: Exclude | None = None,
    ) -> Claim:
        """The messages one poll takes (matching ``search``, without ``exclude``); nothing
        is read or changed."""
        raise NotImplementedError

    def fetch(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """The claimed messages as records, oldest first; flags unchanged."""
        raise NotImplementedError

    def supports_idle(self) -> bool:
        """Whether the server can push news of new mail (IMAP IDLE)."""
        return False

    def wait_for_news(self, timeout: float) -> bool:
        """Block until the server reports a change of the selected folder, or ``timeout``."""
        raise NotImplementedError


def _sink(attachments_dir: str | None) -> DirectorySink:
    """Where one call's attachments go: ``attachments_dir`` or a new temp folder."""
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    return DirectorySink(attachments_dir or default_attachments_dir("receive", stamp))
