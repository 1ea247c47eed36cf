"""ReceiveEmailSensor: the "Receive Email" start of an integration."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_mail.compat import AirflowSensorTimeout, AirflowSkipException, BaseHook
from airflow_provider_mail.exceptions import MailConfigError, error_from_event
from airflow_provider_mail.mail import params

# Hooks, storage, the trigger and the record helpers are imported where a task runs, not
# when a DAG file is parsed: every DAG-processor process imports this module
# (benchmarks/imports.py).
if TYPE_CHECKING:
    from airflow_provider_mail.handover.actions import Action
    from airflow_provider_mail.handover.engine import HandOver
    from airflow_provider_mail.handover.ledger import LedgerEntry
    from airflow_provider_mail.handover.owed import OwedActions, TaskStates
    from airflow_provider_mail.hooks.base import ReceiveHook
    from airflow_provider_mail.mail.search import SearchCriteria
    from airflow_provider_mail.mail.state import Claim


class ReceiveEmailSensor(BaseSensorOperator):
    """Wait for email in a mailbox and return the messages as records.

    Each poll looks for messages (only unseen ones with ``unseen_only=True``); when it
    finds some, the task completes and returns up to ``max_emails`` message records,
    oldest first (XCom ``return_value``). A poll that finds nothing keeps waiting.
    Returned messages count as seen: IMAP sets ``\\Seen``, POP3 remembers their unique ids.
    Nothing is lost: messages are read without changing their flags and marked seen only
    after the claim is written to Airflow's storage, so a retry after a crash delivers
    them again.

    Example, the reference "Obtain Info Emails" step::

        ReceiveEmailSensor(
            task_id="obtain_info_emails",
            conn_id="mail_imap_default",
            unseen_only=True,
            delay=5,
            max_emails=5,
        )

    :param conn_id: a ``mail_imap`` or ``mail_pop3`` connection (default
        ``mail_imap_default``); the protocol follows the connection type.
    :param folder: the folder to read; ``None`` or empty: the inbox. POP3 has only the
        inbox: another folder fails the task when it starts, before any mail is touched.
    :param unseen_only: only messages not yet seen (default ``False``: every message in
        the folder, up to ``max_emails``).
    :param delay: time between polls, seconds or ``timedelta`` (default 5); it is the
        sensor's poke interval, so do not pass ``poke_interval``.
    :param max_emails: most messages one poll returns, the oldest first (default 5);
        ``-1``: all.
    :param deferrable: wait in the triggerer (default ``True``) instead of holding a
        worker slot.
    :param attachments_dir: where attachments are written: a directory or an Airflow
        object-storage URL (``s3://bucket/mail``) that downstream tasks on other workers
        can read. Default: ``<temp dir>/airflow-provider-mail-<uid>/<dag>/<run>/<task>``, private
        to the worker's user.
    :param use_idle: deferrable mode on IMAP: between polls, wait with IMAP IDLE so that
        new mail is noticed within a second rather than after up to ``delay`` seconds
        (default ``False``; see :class:`ReceiveEmailTrigger`).
    :param after_receive: what happens to a message once it is handed over:
        ``"mark_seen"`` (default: IMAP ``\\Seen``, POP3 remembered), ``"leave_unread"``
        (nothing changes on the server; Airflow remembers what was handed over and never
        hands it over again), ``"move"`` (to ``move_to``, IMAP) or ``"delete"``. ``move``
        and ``delete`` happen once this task succeeded (docs/mailbox_actions.md).
    :param move_to: the folder of ``after_receive="move"``; it must exist (checked before
        any mail is touched). Templated.
    :param search: only messages matching all these criteria, a dict with any of
        ``from``, ``to``, ``cc``, ``subject``, ``body``, ``text``, ``since``,
        ``before``, ``larger``, ``smaller``, ``header`` and ``flagged``, e.g.
        ``{"from": "billing@vendor.example", "since": "2026-01-01"}``. IMAP searches
        on the server; POP3 checks headers only (``body``/``text`` are refused). Templated.
    """

    template_fields: Sequence[str] = ("conn_id", "folder", "attachments_dir", "move_to", "search")

    def __init__(
        self,
        *,
        conn_id: str = "mail_imap_default",
        folder: str | None = None,
        unseen_only: bool = False,
        delay: float | timedelta = 5,
        max_emails: int = 5,
        deferrable: bool = True,
        attachments_dir: str | None = None,
        use_idle: bool = False,
        after_receive: str = "mark_seen",
        move_to: str | None = None,
        search: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "poke_interval" in kwargs:
            raise MailConfigError(
                "ReceiveEmailSensor takes delay as its poke interval; pass delay, "
                "not poke_interval."
            )
        self.delay = params.check_delay(delay)
        super().__init__(poke_interval=self.delay, **kwargs)
        self.conn_id = params.check_conn_id(conn_id)
        self.folder = params.check_folder(folder)
        self.unseen_only = params.check_bool(unseen_only, "unseen_only")
        self.max_emails = params.check_max_emails(max_emails)
        self.deferrable = params.check_bool(deferrable, "deferrable")
        self.attachments_dir = params.check_attachments_dir(attachments_dir)
        self.use_idle = params.check_bool(use_idle, "use_idle")
        self.after_receive, self.move_to = params.check_after_receive(after_receive, move_to)
        params.check_move_target(self.folder, self.move_to)
        params.check_search(search)
        self.search = search
        if self.after_receive in ("move", "delete"):
            # Only once Airflow recorded this task's success is the hand-over durable; the
            # task runner calls these callbacks after that, the sensor's own first.
            theirs = self.on_success_callback
            listed = [] if theirs is None else theirs if isinstance(theirs, list) else [theirs]
            self.on_success_callback = [self.after_success, *listed]

    def execute(self, context: Any) -> Any:
        """Deliver an unfinished hand-over of an earlier try, else wait for mail."""
        from airflow_provider_mail.handover.actions import check_before_touching
        from airflow_provider_mail.mail.describe import waiting_line

        # move_to and search are templated: check what they rendered to.
        params.check_after_receive(self.after_receive, self.move_to)
        params.check_move_target(self.folder, self.move_to)
        hook = self._hook()
        try:
            params.check_for_protocol(hook.protocol, self.after_receive, self._criteria())
            handover = self._handover(context, hook)
            check_before_touching(hook.mailbox, self._action())
            # What an earlier failed read took is found again by this task's polls.
            handover.settle_give_backs()
            if self._action().irreversible:
                self._owed(context).settle_others(
                    hook.mailbox, handover.after, self.task_id, self._task_states(context)
                )
        finally:
            hook.close()
        records = self.deliver_unfinished(context)
        if records:
            return records
        self.log.info(
            "%s",
            waiting_line(
                self.conn_id,
                hook.settings,
                self.folder or "INBOX",
                unseen_only=self.unseen_only,
                delay=self.delay,
                max_emails=self.max_emails,
                use_idle=self.use_idle and self.deferrable,
            ),
        )
        if not self.deferrable:
            return super().execute(context)
        self._defer()
        return None

    def deliver_unfinished(self, context: Any) -> list[dict[str, Any]]:
        """The messages an earlier try of this task instance claimed but may not have returned."""
        from airflow_provider_mail.handover.ledger import HandoverLedger

        earlier = HandoverLedger.for_task(context).entry()
        if earlier is None:
            return []
        records = self._hand_over(context, earlier.claim, earlier=earlier)
        self.log.info("Delivered %d message(s) claimed by an earlier try.", len(records))
        return records

    def _defer(self, deadline: float | None = None) -> None:
        """Wait in the triggerer; ``deadline`` (Unix time) keeps an earlier wait's timeout."""
        from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

        timeout = float(self.timeout) if self.timeout is not None else None
        if deadline is not None:
            timeout = max(deadline - time.time(), 0.0)
        self.defer(
            trigger=ReceiveEmailTrigger(
                conn_id=self.conn_id,
                folder=self.folder,
                unseen_only=self.unseen_only,
                max_emails=self.max_emails,
                delay=self.delay,
                mark_seen=False,
                timeout=timeout,
                use_idle=self.use_idle,
                after_receive=self.after_receive,
                search=self.search,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Any) -> bool | PokeReturnValue:
        """One poll in the worker (``deferrable=False``)."""
        from airflow_provider_mail.handover.mailbox import Poll

        with self._hook() as hook:
            claim = self._handover(context, hook).peek(
                Poll(self.folder, self.unseen_only, self.max_emails, search=self._criteria())
            )
            self.log.info("Poll found %d new message(s).", len(claim))
            if not claim:
                return False
            records = self._hand_over(context, claim, hook)
        return PokeReturnValue(is_done=bool(records), xcom_value=records or None)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: fetch the messages it named and hand them over."""
        from airflow_provider_mail.mail.state import Claim

        status = event.get("status")
        if status == "error":
            raise error_from_event(event.get("error"), str(event.get("message")))
        if status == "timeout":
            message = f"No email arrived in {self.conn_id} within {self.timeout} seconds."
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        records = self._hand_over(context, Claim.from_payload(event))
        if not records:
            # The messages vanished (deleted, or the folder was recreated): keep waiting,
            # within the time left of the sensor's timeout.
            self._defer(event.get("deadline"))
        return records

    def _hand_over(
        self,
        context: Any,
        claim: Claim,
        hook: ReceiveHook[Any] | None = None,
        *,
        earlier: LedgerEntry | None = None,
    ) -> list[dict[str, Any]]:
        """Hand the claim over with the engine (:meth:`HandOver.hand_over`): write ahead,
        take, read, mark; ``earlier`` is the ledger entry of a try that died."""
        from airflow_provider_mail.mail.attachments import DirectorySink
        from airflow_provider_mail.mail.describe import received_line

        started = time.monotonic()
        sink = DirectorySink(self.attachments_dir or self._default_attachments_dir(context))
        with contextlib.nullcontext(hook) if hook else self._hook() as session:
            records = self._handover(context, session).hand_over(
                claim, sink, unseen_only=self.unseen_only, earlier=earlier
            )
            # Written before the records are returned: a worker killed after the success
            # leaves the move/delete owed, for the next run to settle.
            self._owed(context).owe(records, self._action())
        for record in records:
            self.log.info("%s", received_line(record))
        self.log.info(
            "Handed over %d message(s) from %s in %.2f s.",
            len(records),
            claim.folder,
            time.monotonic() - started,
        )
        return records

    def _handover(self, context: Any, hook: ReceiveHook[Any]) -> HandOver:
        """The engine over ``hook``'s session with this task instance's ledger."""
        from airflow_provider_mail.handover.ledger import HandoverLedger

        return hook.handover(ledger=HandoverLedger.for_task(context), action=self._action())

    def after_success(self, context: Any) -> None:
        """Move or delete what this task handed over (a success callback: its result is
        stored and the task instance is successful, so no retry will need them)."""
        # The callback is bound to the operator as parsed; the task that ran has the
        # rendered templates (conn_id, move_to).
        rendered = context.get("task") if hasattr(context, "get") else None
        if isinstance(rendered, ReceiveEmailSensor) and rendered is not self:
            rendered.after_success(context)
            return
        from airflow_provider_mail.handover.owed import settle_once_successful

        count = settle_once_successful(context, self._owed(context), self._hook)
        if count:
            verb = "Moved" if self.after_receive == "move" else "Deleted"
            where = f" to {self.move_to}" if self.move_to else ""
            self.log.info("%s %d handed-over message(s)%s.", verb, count, where)

    def _action(self) -> Action:
        from airflow_provider_mail.handover.actions import Action

        return Action(self.after_receive, self.move_to)

    def _criteria(self) -> SearchCriteria | None:
        """``search`` as rendered for this run, checked again (a template may say anything)."""
        return params.check_search(self.search)

    def _owed(self, context: Any) -> OwedActions:
        from airflow_provider_mail.handover.owed import OwedActions

        return OwedActions.for_task(context, self.log)

    def _task_states(self, context: Any) -> TaskStates:
        """Airflow's ``get_task_states`` for this task's runs (Airflow 3.0 and later)."""
        from airflow_provider_mail.handover.owed import task_states_of

        return task_states_of(context, self.log)

    def _hook(self) -> ReceiveHook[Any]:
        from airflow_provider_mail.hooks.registry import receive_hook

        return receive_hook(self.conn_id, BaseHook.get_connection(self.conn_id), self.folder)

    @staticmethod
    def _default_attachments_dir(context: Any) -> str:
        from airflow_provider_mail.mail.attachments import default_attachments_dir

        ti = context["ti"]
        parts = [ti.dag_id, ti.run_id, ti.task_id]
        if ti.map_index is not None and ti.map_index >= 0:
            parts.append(str(ti.map_index))  # mapped sensors may read other mailboxes
        return default_attachments_dir(*parts)
