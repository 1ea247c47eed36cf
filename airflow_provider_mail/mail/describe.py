"""One-line descriptions for task logs: what a sensor waits for, what it received, what was sent.

Subjects, names and file names come from strangers' emails: control characters (a CR/LF
could forge a log line) become spaces and long values are cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mail.mail.settings import ServerSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
MAX_SHOWN = 80


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``value`` as one safe line of at most ``limit`` characters."""
    text = _CONTROL.sub(" ", str(value or "")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def waiting_line(
    conn_id: str,
    settings: ServerSettings,
    folder: str,
    *,
    unseen_only: bool,
    delay: float,
    max_emails: int,
    use_idle: bool = False,
) -> str:
    """What a receive sensor waits for, said once when it starts waiting.

    >>> from airflow_provider_mail.mail.tls import Security
    >>> s = ServerSettings("imap", "imap.example.com", 993, Security.SSL)
    >>> waiting_line("mail_imap_default", s, "INBOX", unseen_only=True, delay=5, max_emails=5)
    'Waiting for unseen mail in INBOX of mail_imap_default (imap.example.com:993, ssl), checking every 5 s, at most 5 per run.'
    """  # noqa: E501
    which = "unseen mail" if unseen_only else "mail"
    how = "woken by IMAP IDLE, checking at least" if use_idle else "checking"
    batch = "all of it per run" if max_emails == -1 else f"at most {max_emails} per run"
    return (
        f"Waiting for {which} in {folder} of {conn_id} ({settings.address}, "
        f"{settings.security.value}), {how} every {delay:g} s, {batch}."
    )


def received_line(record: Mapping[str, Any]) -> str:
    """One received message: sender, subject and attachments.

    >>> received_line({"from": "Jane <jane@example.com>", "subject": "Price list",
    ...                "attachments": [{"filename": "prices.pdf", "size": 2048}]})
    'Received "Price list" from Jane <jane@example.com>, 1 attachment: prices.pdf (2 KB).'
    """
    subject = shown(record.get("subject")) or "(no subject)"
    line = f'Received "{subject}" from {shown(record.get("from")) or "(no sender)"}'
    attachments: Sequence[Mapping[str, Any]] = record.get("attachments") or []
    if not attachments:
        return line + ", no attachments."
    names = ", ".join(
        f"{shown(a.get('filename'), 40) or '(unnamed)'} ({_size(a.get('size'))})"
        for a in attachments[:5]
    )
    more = f" and {len(attachments) - 5} more" if len(attachments) > 5 else ""
    count = f"{len(attachments)} attachment{'s' if len(attachments) != 1 else ''}"
    return f"{line}, {count}: {names}{more}."


def sent_line(result: Mapping[str, Any]) -> str:
    """One sent email, in the words of :func:`received_line`.

    >>> sent_line({"subject": "Hello", "to": ["a@example.com", "b@example.com"],
    ...            "message_id": "<1@example.com>"})
    'Sent "Hello" to a@example.com, b@example.com (Message-ID <1@example.com>).'
    """
    subject = shown(result.get("subject")) or "(no subject)"
    recipients = ", ".join(shown(address) for address in result.get("to") or [])
    return f'Sent "{subject}" to {recipients} (Message-ID {shown(result.get("message_id"))}).'


def _size(size: Any) -> str:
    value = int(size or 0)
    if value < 1024:
        return f"{value} bytes"
    if value < 1024 * 1024:
        return f"{value // 1024} KB"
    return f"{value / (1024 * 1024):.1f} MB"
