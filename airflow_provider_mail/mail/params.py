"""Checks of the parameters DAG authors pass, run when a task is built (pure).

Every public parameter of the sensor, the trigger, the hooks' ``receive`` / ``send`` and
both operators goes through one of these functions, so a wrong type or value fails the
DAG file's import with one sentence naming the parameter, instead of a bare
``TypeError`` later or, worse, a value that is accepted and means something else
(``unseen_only="False"`` is a non-empty string, so it would behave as ``True``).

Values Airflow resolves only when the task runs (an ``XComArg`` such as
``task.output``) are let through here; the code that uses them checks them again then.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail.search import TEXT_KEYS, SearchCriteria

#: The longest ``delay`` or ``timeout`` accepted: a year (more is a typo, and Airflow's
#: own time arithmetic overflows long before ``inf``).
MAX_SECONDS = 365 * 24 * 3600.0
#: Default most bytes the attachments of one email may add up to (before base64): 25 MiB,
#: the limit of Gmail and Microsoft 365 (their limit counts the encoded size; a server
#: with a lower one refuses the email with a clear reply).
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


def is_resolved_later(value: object) -> bool:
    """Whether Airflow resolves ``value`` when the task runs (an ``XComArg``)."""
    return callable(getattr(value, "resolve", None)) and hasattr(value, "iter_references")


def _kind(value: object) -> str:
    return f"{value!r} (a {type(value).__name__})"


def check_bool(value: object, name: str) -> bool:
    """``value`` must be ``True`` or ``False`` (a string such as ``"False"`` would be true)."""
    if not isinstance(value, bool):
        raise MailConfigError(f"{name} must be True or False, not {_kind(value)}.")
    return value


def check_optional_bool(value: object, name: str) -> bool | None:
    """``None``, ``True`` or ``False``."""
    return None if value is None else check_bool(value, name)


def check_text(value: Any, name: str, *, required: bool = False) -> Any:
    """A string (or ``None`` unless ``required``); an ``XComArg`` passes."""
    if is_resolved_later(value):
        return value
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MailConfigError(f"{name} must be text, not {_kind(value)}.")
    if required and not value.strip():
        raise MailConfigError(f"{name} is empty; give a value.")
    return value


def check_conn_id(value: Any, name: str = "conn_id") -> Any:
    """A non-empty connection id."""
    return check_text(value, name, required=True)


def check_folder(value: Any) -> Any:
    """``None`` (the inbox) or a folder name."""
    return check_text(value, "folder")


def check_seconds(value: Any, name: str, *, allow_none: bool = False) -> float | None:
    """Seconds as a number or a ``timedelta``: finite, 0 or more, at most a year."""
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise MailConfigError(
            f"{name} must be a number of seconds or a timedelta, not {_kind(value)}."
        )
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise MailConfigError(
            f"{name} is {seconds:g} seconds; use 0 or more seconds, at most a year "
            f"({MAX_SECONDS:g})."
        )
    return seconds


def check_delay(value: Any) -> float:
    """``delay`` between polls: seconds or a ``timedelta``."""
    seconds = check_seconds(value, "delay")
    assert seconds is not None  # not allow_none
    return seconds


def check_count(value: Any, name: str, minimum: int) -> int:
    """A whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MailConfigError(f"{name} must be a whole number, not {_kind(value)}.")
    if value < minimum:
        raise MailConfigError(f"{name} is {value}; give {minimum} or more.")
    return value


def check_max_emails(max_emails: Any) -> int:
    """``max_emails`` must be a positive count or ``-1`` (all)."""
    if isinstance(max_emails, bool) or not isinstance(max_emails, int):
        raise MailConfigError(
            f"max_emails must be a whole number (a positive count, or -1 for all), "
            f"not {max_emails!r}."
        )
    if max_emails == 0 or max_emails < -1:
        raise MailConfigError(
            f"max_emails is {max_emails}; use a positive number of messages per poll, "
            "or -1 for all."
        )
    return max_emails


def check_max_connections(max_connections: Any) -> int:
    """``max_connections`` must be a whole number of SMTP sessions, 1 or more."""
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise MailConfigError(
            f"max_connections {max_connections!r} is not a whole number; give 1 or more."
        )
    if max_connections < 1:
        raise MailConfigError(f"max_connections is {max_connections}; give 1 or more.")
    return max_connections


def check_attachments_dir(value: Any) -> Any:
    """``None`` (a private temp folder), a directory path or an object-storage URL."""
    if value is None or is_resolved_later(value) or isinstance(value, (str, os.PathLike)):
        return value
    raise MailConfigError(
        f"attachments_dir must be a directory path or an object-storage URL such as "
        f"'s3://bucket/mail', not {_kind(value)}."
    )


def check_headers(value: Any) -> Any:
    """``None`` or a dict of header name -> text (checked fully when the email is built)."""
    if value is None or is_resolved_later(value) or isinstance(value, (Mapping, str)):
        return value
    raise MailConfigError(
        f"headers must be a dict such as {{'X-Ticket-Id': '42'}}, not {_kind(value)}."
    )


def check_dirs(value: Any, name: str) -> Any:
    """``None``, a directory path or URL, or a list of them."""
    if value is None or is_resolved_later(value) or isinstance(value, (str, os.PathLike)):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(item, (str, os.PathLike)) for item in value
    ):
        return value
    raise MailConfigError(
        f"{name} must be a directory path or object-storage URL, or a list of them, not "
        f"{_kind(value)}."
    )


def check_addresses(value: Any, name: str) -> Any:
    """``None``, a comma-separated string or a list of strings."""
    if value is None or isinstance(value, str) or is_resolved_later(value):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(item, str) or is_resolved_later(item) for item in value
    ):
        return value
    raise MailConfigError(
        f"{name} must be addresses as a comma-separated string or a list of strings, "
        f"not {_kind(value)}."
    )


def check_records(value: Any, name: str, *, optional: bool) -> Any:
    """A dict or a list of dicts (``None`` when ``optional``); an ``XComArg`` passes."""
    if (value is None and optional) or is_resolved_later(value) or isinstance(value, Mapping):
        return value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not (isinstance(item, Mapping) or is_resolved_later(item)):
                raise MailConfigError(
                    f"Item {index} of {name} is {_kind(item)}; {name} must be a dict or a "
                    "list of dicts."
                )
        return value
    raise MailConfigError(f"{name} must be a dict or a list of dicts, not {_kind(value)}.")


def check_emails(value: Any, kinds: tuple[type, ...]) -> list[Any]:
    """A list (or any iterable) of email objects of ``kinds``, for ``SmtpHook.send``."""
    if isinstance(value, (str, bytes, *kinds)) or not isinstance(value, Iterable):
        raise MailConfigError(
            f"emails must be a list of email.message.EmailMessage objects, not a "
            f"{type(value).__name__}."
        )
    emails = list(value)
    for index, email in enumerate(emails):
        if not isinstance(email, kinds):
            raise MailConfigError(
                f"Email {index} of emails is a {type(email).__name__}; give "
                "email.message.EmailMessage objects."
            )
    return emails


#: What ``after_receive`` may say happens to a message once it is handed over.
AFTER_RECEIVE = ("mark_seen", "leave_unread", "move", "delete")


def check_after_receive_value(after_receive: Any) -> str:
    """One of :data:`AFTER_RECEIVE`."""
    if after_receive not in AFTER_RECEIVE:
        raise MailConfigError(
            f"after_receive is {after_receive!r}; use one of "
            f"{', '.join(repr(value) for value in AFTER_RECEIVE)}."
        )
    return str(after_receive)


def check_after_receive(after_receive: Any, move_to: Any) -> tuple[str, str | None]:
    """``after_receive`` and ``move_to``: ``move`` needs a folder, nothing else takes one."""
    check_after_receive_value(after_receive)
    if move_to is not None and not isinstance(move_to, str):
        raise MailConfigError(f"move_to must be a folder name, not {_kind(move_to)}.")
    if after_receive == "move" and not (move_to or "").strip():
        raise MailConfigError(
            "after_receive='move' needs move_to, the folder the messages are moved to."
        )
    if after_receive != "move" and move_to is not None:
        raise MailConfigError(
            f"move_to is set but after_receive is {after_receive!r}; set "
            "after_receive='move' or leave move_to out."
        )
    return after_receive, move_to.strip() if move_to else None


def check_move_target(folder: str | None, move_to: str | None) -> None:
    """``move_to`` must differ from the folder read (moving there would deliver it again)."""
    if move_to is None or (folder is not None and not isinstance(folder, str)):
        return  # an XComArg folder is known only when the task runs
    source = (folder or "").strip() or "INBOX"
    same = source == move_to or source.upper() == move_to.upper() == "INBOX"
    if same:
        raise MailConfigError(
            f"move_to is {move_to!r}, the folder being read; move to another folder."
        )


def check_for_protocol(protocol: str, after_receive: str, search: SearchCriteria | None) -> None:
    """What POP3 cannot do, refused when the task starts (the protocol follows the connection)."""
    if protocol != "pop3":
        return
    if after_receive == "move":
        raise MailConfigError(
            "after_receive='move' needs IMAP folders, and this is a POP3 connection; use "
            "'delete', 'mark_seen' or 'leave_unread', or a mail_imap connection."
        )
    if search is not None and search.needs_body():
        raise MailConfigError(
            "search 'body' and 'text' need the message body, which POP3 cannot search "
            "before reading it; search headers only, or use a mail_imap connection."
        )
    if search is not None and search.flagged is not None:
        raise MailConfigError(
            "search 'flagged' needs IMAP flags, which POP3 does not have; leave it out, "
            "or use a mail_imap connection."
        )


_SEARCH_KEYS = (*TEXT_KEYS, "since", "before", "larger", "smaller", "header", "flagged")


def check_search(search: Any) -> SearchCriteria | None:
    """The ``search`` dict as :class:`SearchCriteria`; every key, type and value checked.

    Example: ``{"from": "billing@vendor.example", "subject": "Invoice",
    "since": "2026-01-01", "larger": 10_000, "header": {"X-Priority": "1"}}``.
    """
    if search is None:
        return None
    if not isinstance(search, Mapping):
        raise MailConfigError(
            f"search must be a dict of criteria such as {{'from': 'a@example.com'}}, not "
            f"{_kind(search)}."
        )
    if not search:
        raise MailConfigError("search is an empty dict; give criteria or leave search out.")
    unknown = [key for key in search if key not in _SEARCH_KEYS]
    if unknown:
        raise MailConfigError(
            f"search has the unknown key {unknown[0]!r}; use {', '.join(_SEARCH_KEYS)}."
        )
    texts = tuple(
        (key, _search_text(search[key], f"search[{key!r}]")) for key in TEXT_KEYS if key in search
    )
    since = _search_date(search.get("since"), "since")
    before = _search_date(search.get("before"), "before")
    if since is not None and before is not None and before <= since:
        raise MailConfigError(
            f"search 'before' ({before}) is not after 'since' ({since}), so nothing could "
            "match; 'before' excludes its own day."
        )
    larger = _search_size(search.get("larger"), "larger")
    smaller = _search_size(search.get("smaller"), "smaller")
    flagged = search.get("flagged")
    if flagged is not None and not isinstance(flagged, bool):
        raise MailConfigError(f"search 'flagged' must be True or False, not {_kind(flagged)}.")
    return SearchCriteria(
        texts=texts,
        since=since,
        before=before,
        larger=larger,
        smaller=smaller,
        headers=_search_headers(search.get("header")),
        flagged=flagged,
    )


def _search_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise MailConfigError(f"{name} must be text to look for, not {_kind(value)}.")
    if not value:
        raise MailConfigError(f"{name} is empty, which matches every message; give text.")
    if "\x00" in value:
        raise MailConfigError(f"{name} contains a NUL character, which IMAP cannot carry.")
    return value


def _search_date(value: Any, key: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            pass
    raise MailConfigError(
        f"search {key!r} must be a date or an ISO date such as '2026-01-31', not {_kind(value)}."
    )


def _search_size(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MailConfigError(
            f"search {key!r} must be a whole number of bytes (0 or more), not {_kind(value)}."
        )
    return value


def _search_headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise MailConfigError(
            f"search 'header' must be a dict such as {{'X-Mailer': 'Billing'}}, not {_kind(value)}."
        )
    pairs = []
    for name, text in value.items():
        if (
            not isinstance(name, str)
            or not name
            or any(not ("!" <= char <= "~") or char == ":" for char in name)
        ):
            raise MailConfigError(
                f"search 'header' has the name {name!r}; a header name is printable ASCII "
                "without spaces or ':'."
            )
        pairs.append((name, _search_text(text, f"search['header'][{name!r}]")))
    return tuple(pairs)
