"""SmtpHook: one authenticated SMTP session (smtplib), and sending over it."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any

from airflow_provider_mail.exceptions import (
    MailAuthError,
    MailError,
    MailSendError,
    SendIncompleteError,
)
from airflow_provider_mail.hooks.base import MailHook
from airflow_provider_mail.hooks.oauth2 import TokenRefused
from airflow_provider_mail.mail.compose import ComposedEmail, envelope_of
from airflow_provider_mail.mail.errors import (
    describe_network_error,
    server_reply,
)
from airflow_provider_mail.mail.oauth2 import error_reply
from airflow_provider_mail.mail.params import check_emails, check_max_connections
from airflow_provider_mail.mail.settings import ServerSettings


class _Batch:
    """The emails of one ``send`` call, handed out to one or more sessions in order."""

    def __init__(
        self, emails: list[ComposedEmail], progress: MutableMapping[int, Any] | None = None
    ) -> None:
        self.emails = emails
        self.results: MutableMapping[int, dict[str, Any]] = {} if progress is None else progress
        self.failure: tuple[int | None, str, BaseException] | None = None
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """The next email to send, or ``None`` when all are taken or something failed."""
        with self._lock:
            if self.failure is not None or self._next >= len(self.emails):
                return None
            self._next += 1
            return self._next - 1

    def done(self, index: int) -> None:
        with self._lock:
            self.results[index] = self.emails[index].result()

    def fail(self, index: int | None, reason: str, err: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = (index, reason, err)

    def sent(self) -> list[dict[str, Any]]:
        return [self.results[index] for index in sorted(self.results)]


def _exchange(client: smtplib.SMTP) -> Callable[[str, str], None]:
    """``AUTH mechanism initial-response`` (RFC 4954), as Gmail and Microsoft 365 expect."""

    def exchange(mechanism: str, initial: str) -> None:
        def respond(challenge: bytes | None = None) -> str:
            # A challenge after the initial response is the server's error report.
            return initial if challenge is None else error_reply(mechanism)

        try:
            client.auth(mechanism, respond, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as err:
            raise TokenRefused(mechanism) from err

    return exchange


def _see_through(err: BaseException) -> BaseException:
    """The socket error smtplib wrapped in SMTPServerDisconnected (a timeout, a reset).

    smtplib turns every failed read into ``SMTPServerDisconnected``, which would hide a
    timeout behind "connection closed"; the original error says what to change.
    """
    if isinstance(err, smtplib.SMTPServerDisconnected):
        cause = err.__context__
        if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
            return cause
        return ConnectionResetError(str(err))
    return err


def _ranges(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts: list[str] = []
    start = previous = indexes[0]
    for index in [*indexes[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ", ".join(parts)


def _summary(sent: list[int], total: int) -> str:
    if not sent:
        return "no email was sent"
    unsent = sorted(set(range(total)) - set(sent))
    return (
        f"emails {_ranges(sent)} (counting from 0) were sent already and emails "
        f"{_ranges(unsent)} were not"
    )


class SmtpHook(MailHook[smtplib.SMTP]):
    """Send email over SMTP (connection type ``mail_smtp``).

    As a context manager the hook keeps one authenticated session open across calls::

        with SmtpHook("mail_smtp_default") as hook:
            hook.send([message_1, message_2])

    :param conn_id: a ``mail_smtp`` connection, default ``mail_smtp_default``.
    """

    conn_type = "mail_smtp"
    default_conn_name = "mail_smtp_default"
    hook_name = "Send Email (SMTP)"
    protocol = "smtp"
    probe_description = "the server answered NOOP"

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """As :meth:`MailHook.translate_errors`, seeing through smtplib's disconnect errors."""
        with super().translate_errors():
            try:
                yield
            except smtplib.SMTPServerDisconnected as err:
                raise _see_through(err) from err

    login_refused = (smtplib.SMTPAuthenticationError,)
    client_classes = (smtplib.SMTP, smtplib.SMTP_SSL)

    def _greet(self, client: smtplib.SMTP) -> None:
        client.ehlo()

    def _offers_starttls(self, client: smtplib.SMTP) -> bool:
        return bool(client.has_extn("starttls"))

    def _starttls(self, client: smtplib.SMTP, context: ssl.SSLContext) -> None:
        client.starttls(context=context)
        client.ehlo()

    def _sasl_mechanisms(self, client: smtplib.SMTP, settings: ServerSettings) -> list[str]:
        self._require_auth(client, settings)
        return str(client.esmtp_features.get("auth", "")).split()

    def _sasl_exchange(self, client: smtplib.SMTP) -> Callable[[str, str], None]:
        return _exchange(client)

    def _login(self, client: smtplib.SMTP, settings: ServerSettings) -> None:
        self._require_auth(client, settings)
        client.login(settings.login, settings.password)

    @staticmethod
    def _require_auth(client: smtplib.SMTP, settings: ServerSettings) -> None:
        if not client.has_extn("auth"):
            raise MailAuthError(
                f"{settings.address} does not offer authentication on this connection; choose "
                "Security Method starttls or ssl, or leave User Name empty."
            )

    def _close(self, client: smtplib.SMTP) -> None:
        try:
            client.quit()
        except Exception:
            client.close()

    def _probe(self, client: smtplib.SMTP) -> None:
        code, reply = client.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)

    def send(
        self,
        emails: Sequence[Message | ComposedEmail],
        *,
        max_connections: int = 1,
        progress: MutableMapping[int, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Send ``emails`` and return one result dict per email, in the given order.

        Each result has ``message_id``, ``from``, ``to`` (every envelope recipient) and
        ``subject``. The envelope recipients are the addresses in ``To``, ``Cc`` and ``Bcc``;
        the ``Bcc`` header itself is never transmitted. A message without ``Date`` or
        ``Message-ID`` gets one; the caller's message objects are not changed.

        All emails go over the hook's session (opened here and closed afterwards unless the
        hook is used as a context manager). With ``max_connections`` above 1 the batch is
        spread over up to that many parallel sessions; the results keep the given order.

        :param emails: ``email.message.EmailMessage`` objects (or emails composed with
            :func:`airflow_provider_mail.mail.compose.compose_email`).
        :param max_connections: most sessions used at once, default 1.
        :param progress: filled with ``index -> result`` as soon as the server accepted each
            email, so a caller interrupted mid-batch (a task timeout) knows what went out.
        :raises SendIncompleteError: the server refused a recipient, the sender or a message,
            or the link broke; the message says which emails were sent already, and the
            exception's ``sent`` holds their results. Sending stops at the first failure.
        """
        check_max_connections(max_connections)
        emails = check_emails(emails, (Message, ComposedEmail))
        composed = [
            email if isinstance(email, ComposedEmail) else envelope_of(email, index=index)
            for index, email in enumerate(emails)
        ]
        if not composed:
            return []
        self.renew_if_due()  # a session kept open across calls may outlive its token
        batch = _Batch(composed, progress)
        sessions = min(max_connections, len(composed))
        if sessions == 1:
            self._work(batch)
        else:
            helpers = [self._sibling() for _ in range(sessions - 1)]
            with ThreadPoolExecutor(max_workers=sessions, thread_name_prefix="smtp-send") as pool:
                futures = [pool.submit(hook._work, batch) for hook in (self, *helpers)]
                for future in futures:
                    future.result()
        if batch.failure is not None:
            index, reason, err = batch.failure
            sent = batch.sent()
            if index is None and not sent and isinstance(err, MailError):
                raise err
            summary = _summary(sorted(batch.results), len(composed))
            raise SendIncompleteError(f"{reason}; {summary}.", sent) from err
        self.log.info(
            "Sent %d email(s) through %s over %d session(s).",
            len(composed),
            self.settings.address,
            sessions,
        )
        return batch.sent()

    def _sibling(self) -> SmtpHook:
        """Another hook on the same connection, for one more parallel session."""
        hook = SmtpHook(self.conn_id, connection=self._connection)
        hook._settings = self.settings
        return hook

    def _work(self, batch: _Batch) -> None:
        """Send emails from ``batch`` over this hook's session until none are left."""
        opened_here = self._client is None
        try:
            try:
                client = self.client
            except MailError as err:
                batch.fail(None, str(err).rstrip("."), err)
                return
            while (index := batch.take()) is not None:
                try:
                    self._transmit(client, batch.emails[index], index)
                except Exception as err:
                    batch.fail(index, self._describe_send_error(err, index), err)
                    with contextlib.suppress(Exception):
                        client.rset()
                    return
                batch.done(index)
        finally:
            if opened_here:
                self.close()

    def _transmit(self, client: smtplib.SMTP, email: ComposedEmail, index: int) -> None:
        """One SMTP transaction; every refused recipient stops it before DATA."""
        options: list[str] = []
        if email.international:
            if not client.has_extn("smtputf8"):
                raise MailSendError(
                    f"Email {index} has non-ASCII addresses but {self.settings.address} does not "
                    "offer SMTPUTF8; use ASCII addresses or another server."
                )
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        data = email.as_bytes()
        if not options and not data.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        code, reply = client.mail(email.sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, email.sender)
        for recipient in email.recipients:
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = client.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _describe_send_error(self, err: Exception, index: int) -> str:
        """The first half of the failure sentence: what went wrong with email ``index``."""
        where = self.settings.address
        if isinstance(err, MailError):
            return str(err).rstrip(".")
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            recipient, (code, reply) = next(iter(err.recipients.items()))
            text = server_reply(smtplib.SMTPResponseException(code, reply))
            return f"{where} refused recipient {recipient!r} of email {index} ({text})"
        if isinstance(err, smtplib.SMTPSenderRefused):
            return (
                f"{where} refused the sender {err.sender!r} of email {index} ({server_reply(err)})"
            )
        if isinstance(err, smtplib.SMTPResponseException):
            return f"{where} refused email {index} ({server_reply(err)})"
        reason = str(describe_network_error(_see_through(err), self.settings)).rstrip(".")
        return f"Email {index} may not have been sent because of this: {reason}"
