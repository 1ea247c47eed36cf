"""ReceiveEmailTrigger: polls a mailbox in the triggerer without blocking its event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_mail.exceptions import (
    MailAuthError,
    MailConfigError,
    MailError,
)
from airflow_provider_mail.hooks.registry import receive_hook
from airflow_provider_mail.mail import params

# The hooks and the claims are imported where a trigger runs, not when a DAG file that
# uses it (an AssetWatcher) is parsed: every DAG-processor process imports this module.
if TYPE_CHECKING:
    from airflow_provider_mail.handover.actions import Action
    from airflow_provider_mail.handover.mailbox import Poll
    from airflow_provider_mail.hooks.base import ReceiveHook
    from airflow_provider_mail.mail.state import Claim
    from airflow_provider_mail.triggers.shared_poll import SharedPoll, Waiter

MAX_BACKOFF_SECONDS = 300.0
#: How long one IMAP IDLE lasts before it is renewed (servers drop IDLE after 29 minutes).
IDLE_RENEW_SECONDS = 120.0


class ReceiveEmailTrigger(BaseEventTrigger):
    """Poll a mailbox every ``delay`` seconds until new mail is there, then fire an event.

    It runs the hooks' own code in a thread (``asyncio.to_thread``), so the triggerer's
    event loop never blocks. Its event is small: which messages are new (folder,
    UIDVALIDITY and UIDs, or POP3 unique ids), never bodies or attachments.

    Used by :class:`ReceiveEmailSensor` (``mark_seen=False``): the resumed task fetches the
    messages and marks them seen after handing them over. Used in an ``AssetWatcher``
    (``mark_seen=True``, the default with ``unseen_only=True``), the event is the
    hand-over, so the trigger marks
    what it emits and keeps watching::

        Asset("mailbox://info", watchers=[AssetWatcher(
            name="info_inbox",
            trigger=ReceiveEmailTrigger("mail_imap_default", unseen_only=True))])

    :param conn_id: a ``mail_imap`` or ``mail_pop3`` connection.
    :param folder: the folder to watch; ``None`` or empty: the inbox.
    :param unseen_only: only messages not yet seen.
    :param max_emails: most messages one event names, the oldest first; ``-1``: all.
    :param delay: seconds between polls (default 5).
    :param mark_seen: mark the messages seen when the event is emitted (AssetWatcher use);
        default: ``unseen_only``, so the SPEC's defaults build a trigger that only looks.
    :param timeout: give up after this many seconds with a ``timeout`` event (sensor use).
    :param use_idle: wait with IMAP IDLE between polls when the server offers it, so new
        mail is noticed within a second instead of after up to ``delay`` seconds. IDLE is
        renewed every :data:`IDLE_RENEW_SECONDS` (well under the 29-minute limit of RFC
        2177); any IDLE error falls back to polling every ``delay``. Default ``False``.
    :param max_failures: consecutive failed polls (server down, network) tolerated, with
        growing back-off, before the trigger fails; authentication and configuration
        errors fail at once.
    :param search: only messages matching all these criteria (the sensor's ``search``).
    :param after_receive: the sensor's ``after_receive``: with ``leave_unread``, ``move``
        or ``delete`` a poll does not find again what was handed over. In an AssetWatcher
        (``mark_seen=True``, the default for these values) the trigger takes what it emits
        into Airflow's record of handed-over mail instead of setting ``\\Seen``, and the run's
        :meth:`~airflow_provider_mail.hooks.base.ReceiveHook.fetch_claimed` moves or deletes
        the messages once its task has succeeded (docs/mailbox_actions.md).
    :param move_to: the folder of ``after_receive="move"`` (AssetWatcher use; it must exist,
        checked before the first poll).
    """

    def __init__(
        self,
        conn_id: str,
        folder: str | None = None,
        unseen_only: bool = False,
        max_emails: int = 5,
        delay: float = 5.0,
        mark_seen: bool | None = None,
        timeout: float | None = None,
        max_failures: int = 5,
        use_idle: bool = False,
        search: dict[str, Any] | None = None,
        after_receive: str = "mark_seen",
        move_to: str | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = params.check_conn_id(conn_id)
        self.folder = params.check_folder(folder)
        self.unseen_only = params.check_bool(unseen_only, "unseen_only")
        self.max_emails = params.check_max_emails(max_emails)
        after_receive = params.check_after_receive_value(after_receive)
        mark_seen = params.check_optional_bool(mark_seen, "mark_seen")
        if mark_seen is None:
            # Besides mark_seen, every after_receive remembers what was handed over, so an
            # AssetWatcher's trigger never emits a message twice whatever unseen_only says.
            mark_seen = unseen_only or after_receive != "mark_seen"
        if mark_seen and not unseen_only and after_receive == "mark_seen":
            raise MailConfigError(
                "A ReceiveEmailTrigger that marks what it emits (an AssetWatcher) needs "
                "unseen_only=True; otherwise every poll would emit the whole folder again."
            )
        self.delay = params.check_delay(delay)
        self.mark_seen = mark_seen
        self.timeout = params.check_seconds(timeout, "timeout", allow_none=True)
        self.max_failures = params.check_count(max_failures, "max_failures", 1)
        self.use_idle = params.check_bool(use_idle, "use_idle")
        self.search = search
        self._criteria = params.check_search(search)
        self.after_receive = after_receive
        self.move_to = move_to
        if mark_seen:
            # The deferred sensor's trigger only looks (the task checks move_to); an
            # AssetWatcher's run moves to the folder its event names.
            _, self.move_to = params.check_after_receive(after_receive, move_to)
            params.check_move_target(self.folder, self.move_to)
        self._idle_thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._deadline_epoch: float | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments; holds no secret, only the connection id.

        ``move_to`` only when set: Airflow identifies an AssetWatcher's trigger by these
        arguments, so the triggers of existing DAGs stay the same ones.
        """
        kwargs: dict[str, Any] = {} if self.move_to is None else {"move_to": self.move_to}
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "folder": self.folder,
                "unseen_only": self.unseen_only,
                "max_emails": self.max_emails,
                "delay": self.delay,
                "mark_seen": self.mark_seen,
                "timeout": self.timeout,
                "max_failures": self.max_failures,
                "use_idle": self.use_idle,
                "search": self.search,
                "after_receive": self.after_receive,
                **kwargs,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until messages are found; yields ``{"status": "success", **claim}``."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        # The sensor defers again when the messages vanished before its hand-over; the
        # wall-clock deadline in the event lets its next trigger keep this one's timeout.
        self._deadline_epoch = None if self.timeout is None else time.time() + self.timeout
        if self._shares_polls():
            # Inline, not a generator of its own: see ``SharedPolls``.
            from airflow_provider_mail.triggers.shared_poll import SharedPolls

            shared, key = SharedPolls.of_running_loop(), self._share_key()
            try:
                poll, waiter = await shared.join(
                    key, self._connect, takes=self._takes(), max_emails=self.max_emails
                )
            except MailError as err:
                yield self._failure(err)
                return
            try:
                async for event in self._poll_until_found(poll.hook, deadline, (poll, waiter)):
                    yield event
            finally:
                await shared.leave(key, poll, waiter)
            return
        try:
            hook = await self._connect()
        except MailError as err:
            yield self._failure(err)
            return
        try:
            async for event in self._poll_until_found(hook, deadline):
                yield event
        finally:
            # Closing the session also ends an IDLE still waiting in its thread.
            await asyncio.to_thread(hook.close)
            if self._idle_thread is not None:
                self._idle_thread.shutdown(wait=False, cancel_futures=True)

    async def _connect(self) -> ReceiveHook[Any]:
        """A hook for the connection, looked up once per triggerer (see
        :mod:`.connection_cache`)."""
        from airflow_provider_mail.triggers.connection_cache import cached_connection

        return receive_hook(self.conn_id, await cached_connection(self.conn_id), self.folder)

    def _takes(self) -> bool:
        """Whether the sensor's hand-over takes the messages from every other poller
        (then one waiting sensor per message is resumed, see :mod:`..mail.dispatch`)."""
        return self.unseen_only or self.after_receive != "mark_seen"

    def _shares_polls(self) -> bool:
        """Whether this trigger may share its polls (see :mod:`.shared_poll`).

        A deferred sensor's trigger only looks; an AssetWatcher's takes what it emits (and
        Airflow already shares identical AssetWatcher triggers); IDLE needs a session of
        its own.
        """
        return not self.mark_seen and not self.use_idle

    def _share_key(self) -> tuple[Any, ...]:
        from airflow_provider_mail.mail.state import mailbox_key

        return (
            type(self).__qualname__,
            self.conn_id,
            mailbox_key(self.folder),
            self.unseen_only,
            self.max_emails,
            json.dumps(self.search, sort_keys=True, default=str),
            self.after_receive,
        )

    async def _poll_until_found(
        self,
        hook: ReceiveHook[Any],
        deadline: float | None,
        shared: tuple[SharedPoll, Waiter] | None = None,
    ) -> AsyncIterator[TriggerEvent]:
        failures = 0
        # An AssetWatcher trigger first re-emits a claim of an earlier life of itself
        # whose event may not have gone out.
        recover_pending = self.mark_seen
        while True:
            claim: Claim | None
            try:
                if shared is None:
                    claim = await asyncio.to_thread(self._take, hook, recover_pending)
                else:
                    claim = await shared[0].poll(shared[1], self._peek, fresh_for=self.delay)
                recover_pending = False
                failures = 0
            except (MailAuthError, MailConfigError) as err:
                if isinstance(err, MailAuthError):
                    from airflow_provider_mail.triggers.connection_cache import forget_connection

                    forget_connection(self.conn_id)  # a rotated password is read again
                yield self._failure(err)
                return
            except Exception as err:
                from airflow_provider_mail.mail.errors import describe_network_error

                if shared is not None:
                    hook = shared[0].hook  # the session the failed poll used
                failure = describe_network_error(err, hook.settings)  # MailErrors as they are
                if shared is None:
                    await asyncio.to_thread(hook.close)
                failures += 1
                if failures >= self.max_failures:
                    yield self._failure(failure, after=failures)
                    return
                backoff = min(max(self.delay, 1.0) * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
                self.log.warning(
                    "Poll %d of %s failed (%s); retrying in %.0f s.",
                    failures,
                    self.conn_id,
                    failure,
                    backoff,
                )
                await asyncio.sleep(backoff)
                continue
            if claim:
                self.log.info(
                    "%d new message(s) in %s of %s.", len(claim), claim.folder, self.conn_id
                )
                payload = claim.to_payload()
                if self.mark_seen and self.after_receive != "mark_seen":
                    # fetch_claimed reads what to do after the hand-over from the event.
                    payload.update(after_receive=self.after_receive, move_to=self.move_to)
                if self._deadline_epoch is not None:
                    payload["deadline"] = self._deadline_epoch
                if shared is not None:
                    shared[1].fired = True  # its share stays leased to the resumed task
                yield TriggerEvent({"status": "success", **payload})
                if not self.mark_seen:
                    return
                await self._release(hook, claim)
            elif deadline is not None and time.monotonic() >= deadline:
                yield TriggerEvent({"status": "timeout", "conn_id": self.conn_id})
                return
            if shared is not None:
                await shared[0].wait(shared[1], self._until(self.delay, deadline))
                continue
            if not hook.session_sees_new_mail:
                await asyncio.to_thread(hook.close)
            await self._wait(hook, deadline)

    def _take(self, hook: ReceiveHook[Any], recover_pending: bool) -> Claim:
        """One poll, in a worker thread: the messages this trigger's next event names.

        As an AssetWatcher the event is the hand-over, so the engine takes the messages
        first (atomically against other triggers, with a pending mark that survives a
        crash, :meth:`HandOver.watch`); after the event went out :meth:`_release` clears
        the mark. A crash in between repeats an event, never loses one.
        """
        if not self.mark_seen:
            return self._peek(hook, self.max_emails)
        handover = hook.handover(action=self._action(), watching=True)
        if recover_pending and self.after_receive != "mark_seen":
            # Once per life, before anything is taken; later polls stay as light.
            self._check_before_touching(hook)
        claim = handover.watch(self._poll(self.max_emails), recover_pending=recover_pending)
        self.log.debug("Polled %s (%s): %d new message(s).", self.conn_id, claim.folder, len(claim))
        return claim

    def _poll(self, max_emails: int) -> Poll:
        from airflow_provider_mail.handover.mailbox import Poll

        return Poll(self.folder, self.unseen_only, max_emails, search=self._criteria)

    def _action(self) -> Action:
        from airflow_provider_mail.handover.actions import Action

        return Action(self.after_receive, self.move_to)

    def _check_before_touching(self, hook: ReceiveHook[Any]) -> None:
        """An AssetWatcher's ``after_receive``: what the protocol cannot do, a missing
        ``move_to`` and a server that cannot move or delete exactly, before the first take."""
        from airflow_provider_mail.handover.actions import check_before_touching

        params.check_for_protocol(hook.protocol, self.after_receive, self._criteria)
        check_before_touching(hook.mailbox, self._action())

    @staticmethod
    def _until(seconds: float, deadline: float | None) -> float:
        """``seconds``, cut short by ``deadline`` (never negative)."""
        if deadline is None:
            return seconds
        return max(min(seconds, deadline - time.monotonic()), 0.0)

    def _peek(self, hook: ReceiveHook[Any], max_emails: int) -> Claim:
        """One poll that changes nothing, for up to ``max_emails`` messages: a deferred
        sensor's (in a shared session, see :meth:`_shares_polls`, a share for each waiting
        sensor)."""
        claim = hook.handover(action=self._action()).peek(self._poll(max_emails))
        self.log.debug("Polled %s (%s): %d new message(s).", self.conn_id, claim.folder, len(claim))
        return claim

    async def _release(self, hook: ReceiveHook[Any], claim: Claim) -> None:
        """The event went out: clear the pending mark (taking the messages marked them seen)."""
        try:
            handover = hook.handover(action=self._action(), watching=True)
            await asyncio.to_thread(handover.released, claim)
        except Exception as err:
            # The pending mark stays: this claim's event repeats after a restart.
            self.log.warning(
                "Could not clear the pending mark in %s (%s); the event may repeat.",
                claim.folder,
                err,
            )
            await asyncio.to_thread(hook.close)

    async def _wait(self, hook: ReceiveHook[Any], deadline: float | None) -> None:
        """Until the next poll: ``delay`` seconds, or until IDLE reports news."""
        if not self.use_idle:
            await asyncio.sleep(self.delay)
            return
        timeout = self._until(IDLE_RENEW_SECONDS, deadline)
        loop = asyncio.get_running_loop()
        if self._idle_thread is None:
            # Its own thread: an IDLE blocks for minutes and must not take a slot of the
            # shared executor that every other trigger's polls run in.
            self._idle_thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="mail-idle"
            )
        try:
            if await loop.run_in_executor(self._idle_thread, hook.supports_idle):
                await loop.run_in_executor(self._idle_thread, hook.wait_for_news, timeout)
                return
            self.log.info("%s does not offer IDLE; polling every %g s.", self.conn_id, self.delay)
        except MailError as err:
            self.log.warning(
                "IDLE on %s failed (%s); polling every %g s.", self.conn_id, err, self.delay
            )
            await asyncio.to_thread(hook.close)
        self.use_idle = False
        await asyncio.sleep(self.delay)

    def _failure(self, err: MailError, after: int = 0) -> TriggerEvent:
        if self.mark_seen:
            # An AssetWatcher has no task to report to: fail the trigger itself.
            raise err
        message = str(err) if not after else f"{err} (gave up after {after} failed polls)"
        # The class name travels too: the task raises the same MailError subclass.
        return TriggerEvent(
            {
                "status": "error",
                "conn_id": self.conn_id,
                "error": type(err).__name__,
                "message": message,
            }
        )
