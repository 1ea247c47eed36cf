"""The errors this provider raises.

Every message says, in one sentence, what happened and what to change. None of them
ever contains a password or a message body.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mail.compat import AirflowException


class MailError(AirflowException):
    """Base class of every error raised by airflow-provider-mail."""


class MailConfigError(MailError, ValueError):
    """A connection or task parameter is invalid; raised before any mail is touched."""


class MailConnectionError(MailError):
    """The server could not be reached: unknown host, refused port, timeout, dropped link."""


class MailTLSError(MailConnectionError):
    """TLS could not be negotiated: untrusted certificate, host name mismatch, no STARTTLS."""


class MailAuthError(MailError):
    """The server rejected the user name or password."""


class MailProtocolError(MailError):
    """The server answered a command with an error (for example, an unknown folder)."""


class MailStorageError(MailError):
    """An attachment could not be written under ``attachments_dir``."""


class MailSendError(MailError):
    """An email could not be composed or sent (bad address, header injection, refused recipient)."""


class SendIncompleteError(MailSendError):
    """Sending stopped part-way through a batch.

    :ivar sent: the result dicts of the emails that did go out, in the batch's order.
    """

    def __init__(self, message: str, sent: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.sent = sent or []


class InvalidAddressError(ValueError):
    """``value`` is not a usable email address; ``value`` is the offending text.

    Raised by the pure address functions (``mail/addresses.py``); composing an email turns
    it into a :class:`MailSendError` that names the item.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


def error_from_event(name: object, message: str) -> MailError:
    """The error a trigger reported, rebuilt as the same class for the task.

    A trigger runs in the triggerer and can only send JSON to the task that resumes on a
    worker: it sends the class name and the sentence, and this gives the task the same
    :class:`MailError` subclass back (``MailError`` for a name it does not know), so code
    that catches :class:`MailAuthError` catches it in deferrable mode too.
    """
    classes = {cls.__name__: cls for cls in _mail_errors(MailError)}
    return classes.get(str(name), MailError)(message)


def _mail_errors(cls: type[MailError]) -> list[type[MailError]]:
    """``cls`` and its subclasses defined in this module (their constructors take one message)."""
    found = [cls] if cls.__module__ == __name__ else []
    for child in cls.__subclasses__():
        found += _mail_errors(child)
    return found
