"""SendEmailOperator: the "Send Email" step."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail import params
from airflow_provider_mail.mail.describe import sent_line
from airflow_provider_mail.mail.priority import ParameterPriority, merge_fields, unknown_keys

# The hook, compose and storage are imported where the task runs, not when a DAG file is
# parsed: every DAG-processor process imports this module (benchmarks/imports.py).
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mail.mail.compose import ComposedEmail
    from airflow_provider_mail.storage import TaskLedger

Addresses = str | Sequence[str] | None


class SentRecord(MutableMapping[int, dict[str, Any]]):
    """The ``progress`` of one send: each email is recorded in the ledger once accepted.

    The hook sets ``record[position] = result`` right after the server accepted email
    ``position`` of this try's batch; this writes the whole "sent" entry (the earlier
    tries' emails plus this try's so far) to the task's ledger at once, one Variable write
    per email. A worker killed outright therefore leaves a retry that resends at most the
    one email whose acceptance was not yet written: the window is the time between the
    server's reply to DATA and the end of that write.
    """

    def __init__(
        self, ledger: TaskLedger, earlier: Mapping[str, dict[str, Any]], indexes: Sequence[int]
    ) -> None:
        self._ledger = ledger
        self._sent = dict(earlier)
        self._indexes = list(indexes)  # position in this try's batch -> index in ``data``
        self._results: dict[int, dict[str, Any]] = {}

    def __setitem__(self, position: int, result: dict[str, Any]) -> None:
        self._results[position] = result
        self._sent[str(self._indexes[position])] = result
        self._ledger.record({"sent": self._sent})

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self._results[position]

    def __delitem__(self, position: int) -> None:
        raise TypeError("An email that went out stays recorded as sent.")

    def __iter__(self) -> Iterator[int]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)


class SendEmailOperator(BaseOperator):
    """Send one email per consumed-data item (or one email) over SMTP.

    The "Send Email" step: the operator's own values (the *input values*) are merged with
    each item of ``data`` (the *consumed data*, such as a ``MapOperator``'s output), one
    email per item, all over one SMTP session::

        SendEmailOperator(
            task_id="send_to_leads",
            conn_id="mail_smtp_default",
            from_email="Sales <sales@example.com>",
            to="leads@example.com",
            subject="New lead",
            data=map_to_leads.output,
            parameter_priority="consumed_data",
        )

    Every email is built and checked before the first one is sent: an item without a
    recipient, with an invalid address or with a line break in a header value fails the
    task with a message naming the item (numbered from 0), and nothing is sent.

    The task returns (XCom) one dict per email sent: ``message_id``, ``from``, ``to`` (the
    list of every envelope recipient, Bcc included) and ``subject``.

    A failure part-way (for example, the server refuses a recipient of the third email)
    fails the task with a message saying which emails were sent already; sending stops
    there. Each email is recorded as sent right after the server accepted it (Airflow
    Variable ``mail_provider/sent/<dag_id>/<task_id>``, one write per email), so the retry
    of the task sends only the rest, after a refusal, a task timeout or a worker killed
    outright. The one window: a worker killed between the server's acceptance of an email
    and the end of its write resends that one email.

    Fields that take addresses accept a comma-separated string
    (``"a@example.com, Bob <b@example.com>"``) or a list of strings. Every parameter but
    ``parameter_priority`` and ``max_connections`` is an Airflow template
    field (``subject="Report for {{ ds }}"``); data that arrives through an ``XComArg``
    (such as a ``MapOperator``'s output) is passed as it is, never rendered as a template.

    :param conn_id: a ``mail_smtp`` connection, default ``mail_smtp_default``.
    :param from_email: the sender, such as ``"Sales <sales@example.com>"``. Required, even
        when the consumed data supplies ``from`` (it is then the fallback or the override,
        depending on ``parameter_priority``).
    :param to: recipients, default ``None``.
    :param cc: copy recipients, default ``None``.
    :param bcc: blind-copy recipients, default ``None``: they receive the email but appear
        in no header.
    :param subject: the subject, default ``None`` (no subject).
    :param text: the plain-text body, default ``None``.
    :param html: an HTML body, default ``None``. With ``text`` as well, the email is
        ``multipart/alternative`` and mail programs show the version they prefer.
    :param reply_to: where replies go, default ``None`` (to the sender).
    :param data: the consumed data, default ``None``: a dict or a list of dicts with any of
        the keys ``from``, ``to``, ``cc``, ``bcc``, ``subject``, ``text``, ``html``,
        ``reply_to``, ``attachments``, ``in_reply_to``, ``references``, ``headers`` and
        ``auto_submitted`` (other keys are ignored, with a warning). ``None`` sends one email from
        the input values alone; an empty list sends nothing and the task succeeds.
    :param parameter_priority: which side wins when both set a field:
        ``"input_values"`` (default: the operator's value wins, the item's value is the
        fallback) or ``"consumed_data"`` (recommended with a mapper: the item's value wins,
        the operator's values are defaults). A field that is missing or empty on the
        winning side is taken from the other side.
    :param max_connections: how many SMTP sessions may send in parallel, default 1 (all
        emails over one session). Raise it only for large batches to a server that allows
        several connections per client.
    :param attachments: files to attach, default ``None``: a local path, an object-storage
        URL (``s3://bucket/report.pdf``, ``file:///data/report.pdf``), an attachment dict
        of a received message (``path``, ``filename``, ``content_type``), or a list of
        them. Each travels base64-encoded, byte for byte; the content type is guessed from
        the file name when not given. Files named by consumed data (an item's
        ``attachments``, such as ``{{ item.attachments }}`` forwarding what was received)
        must lie under ``attachment_dirs``.
    :param in_reply_to: the message id this email answers, default ``None``, such as a
        record's ``message_id`` (``"<abc@example.org>"``); mail programs show the reply in
        the same conversation.
    :param references: the thread's message ids, oldest first, default ``None``: text
        (``"<a@x> <b@x>"``) or a list. For a reply: the record's ``references`` plus its
        ``message_id``. At most 100 are written (the first and the newest).
    :param headers: extra headers, default ``None``, such as ``{"X-Ticket-Id": "42"}``.
        Headers with a parameter of their own, the MIME and the trace headers cannot be set
        this way (From, To, Cc, Bcc, Reply-To, Subject, Date, Message-ID, In-Reply-To,
        References, Auto-Submitted, MIME-Version, Content-*, Received...). The operator's
        dict and an item's are merged name by name, the ``parameter_priority`` side winning.
    :param auto_submitted: the RFC 3834 ``Auto-Submitted`` header, default ``None`` (not
        set): ``"auto-replied"`` for an automatic answer, ``"auto-generated"`` for a
        report. Well-behaved responders (and this provider's ``automatic`` record field)
        never answer such an email, which prevents mail loops.
    :param attachment_dirs: folders (paths or object-storage URLs) that consumed data may
        attach files from, default ``None``: only the folder where received attachments
        are written by default (the system temp directory's ``airflow-provider-mail-<uid>``).
        Give the sensor's ``attachments_dir`` here when it is set. The operator's own
        ``attachments`` may name any file.
    :param max_attachment_bytes: the most bytes the attachments of one email may add up to,
        default 25 MiB (Gmail's and Microsoft 365's limit). A larger total fails the task
        before anything is sent.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "from_email",
        "to",
        "cc",
        "bcc",
        "subject",
        "text",
        "html",
        "reply_to",
        "data",
        "attachments",
        "in_reply_to",
        "references",
        "headers",
        "auto_submitted",
    )
    ui_color = "#fdf1e8"

    def __init__(
        self,
        *,
        from_email: str,
        conn_id: str = "mail_smtp_default",
        to: Addresses = None,
        cc: Addresses = None,
        bcc: Addresses = None,
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        reply_to: Addresses = None,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Any = None,
        parameter_priority: str = ParameterPriority.INPUT_VALUES.value,
        max_connections: int = 1,
        attachments: Any = None,
        in_reply_to: str | Sequence[str] | None = None,
        references: str | Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        auto_submitted: str | None = None,
        attachment_dirs: str | Sequence[str] | None = None,
        max_attachment_bytes: int = params.DEFAULT_MAX_ATTACHMENT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not from_email or (isinstance(from_email, str) and not from_email.strip()):
            raise MailConfigError(
                "from_email is empty; set the sender, such as 'Sales <sales@example.com>'."
            )
        params.check_max_connections(max_connections)
        self.conn_id = params.check_conn_id(conn_id)
        self.from_email = params.check_text(from_email, "from_email", required=True)
        self.to = params.check_addresses(to, "to")
        self.cc = params.check_addresses(cc, "cc")
        self.bcc = params.check_addresses(bcc, "bcc")
        self.subject = params.check_text(subject, "subject")
        self.text = params.check_text(text, "text")
        self.html = params.check_text(html, "html")
        self.reply_to = params.check_addresses(reply_to, "reply_to")
        self.data = params.check_records(data, "data", optional=True)
        self.parameter_priority = ParameterPriority.parse(parameter_priority).value
        self.max_connections = max_connections
        self.attachments = attachments
        self.in_reply_to = params.check_addresses(in_reply_to, "in_reply_to")
        self.references = params.check_addresses(references, "references")
        self.headers = params.check_headers(headers)
        self.auto_submitted = params.check_text(auto_submitted, "auto_submitted")
        self.attachment_dirs = params.check_dirs(attachment_dirs, "attachment_dirs")
        self.max_attachment_bytes = params.check_count(
            max_attachment_bytes, "max_attachment_bytes", 1
        )

    def _input_values(self) -> dict[str, Any]:
        return {
            "from": self.from_email,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "reply_to": self.reply_to,
            "attachments": self.attachments,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "headers": self.headers,
            "auto_submitted": self.auto_submitted,
        }

    def _attachment_dirs(self) -> tuple[str, ...]:
        dirs = self.attachment_dirs
        if dirs is None:
            return ()
        if isinstance(dirs, (str, os.PathLike)):
            return (os.fspath(dirs),)
        return tuple(os.fspath(one) for one in dirs)

    def _items(self) -> list[tuple[int | None, Mapping[str, Any] | None]]:
        data = self.data
        if data is None:
            return [(None, None)]
        if isinstance(data, Mapping):
            return [(None, data)]
        if isinstance(data, (list, tuple)):
            for index, item in enumerate(data):
                if not isinstance(item, Mapping):
                    raise MailConfigError(
                        f"Item {index} of data is a {type(item).__name__}, not a dict; data "
                        "must be a dict or a list of dicts."
                    )
            return list(enumerate(data))
        raise MailConfigError(
            f"data is a {type(data).__name__}; give a dict, a list of dicts, or nothing."
        )

    def compose(self) -> list[ComposedEmail]:
        """Build and check every email (attachments looked up), before anything is sent."""
        from airflow_provider_mail.mail import outgoing
        from airflow_provider_mail.mail.compose import compose_email, header_dict

        priority = ParameterPriority.parse(self.parameter_priority)
        input_values = self._input_values()
        allowed_dirs = (*outgoing.default_allowed_dirs(), *self._attachment_dirs())
        emails = []
        ignored: set[str] = set()
        for index, item in self._items():
            label = "The email" if index is None else f"Item {index}"
            if item is not None:
                ignored.update(unknown_keys(item))
                # A mapper renders every value as text: read a rendered dict back.
                item = {**item, "headers": header_dict(item.get("headers"), label)}
            fields = merge_fields(
                {**input_values, "headers": header_dict(self.headers, label)}, item, priority
            )
            chosen = fields.pop("attachments")
            requests = outgoing.attachment_requests(chosen, label)
            # Files named by consumed data may come from a stranger: confine them.
            if item is not None and chosen is not None and chosen is item.get("attachments"):
                outgoing.check_confined(requests, allowed_dirs, label)
            files = outgoing.resolve(requests, label, self.max_attachment_bytes)
            emails.append(
                compose_email(
                    fields,
                    item=index,
                    attachments=files,
                    max_attachment_bytes=self.max_attachment_bytes,
                )
            )
        if ignored:
            self.log.warning(
                "Ignored data keys that are not email fields: %s.", ", ".join(sorted(ignored))
            )
        return emails

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Compose every email, then send them all; returns one result dict per email."""
        emails = self.compose()
        if not emails:
            self.log.info("data is an empty list, so no email was sent.")
            return []
        from airflow_provider_mail.hooks.smtp import SmtpHook
        from airflow_provider_mail.storage import TaskLedger

        ledger = TaskLedger.for_task("sent", context)
        earlier: dict[str, dict[str, Any]] = dict((ledger.pending() or {}).get("sent", {}))
        if earlier:
            self.log.info(
                "%d email(s) went out in an earlier try of this task; not sending them again.",
                len(earlier),
            )
        todo = [(index, email) for index, email in enumerate(emails) if str(index) not in earlier]
        self.log.info("Composed %d email(s); sending through %r.", len(todo), self.conn_id)
        progress = SentRecord(ledger, earlier, [index for index, _email in todo])
        try:
            fresh = SmtpHook(self.conn_id).send(
                [email for _index, email in todo],
                max_connections=self.max_connections,
                progress=progress,
            )
        except BaseException:
            for result in progress.values():
                self._log_sent(result)
            raise
        # Done: clearing this task later sends the whole batch, like any operator.
        ledger.record({"sent": {}})
        by_index = {**earlier, **{str(index): r for (index, _), r in zip(todo, fresh, strict=True)}}
        results = [by_index[str(index)] for index in range(len(emails))]
        for result in fresh:
            self._log_sent(result)
        return results

    def _log_sent(self, result: dict[str, Any]) -> None:
        self.log.info("%s", sent_line(result))
