"""Files attached to outgoing email: what may be attached, and reading it.

``attachments`` (a Send Email parameter and item key) names files three ways: a local
path, an object-storage URL (``s3://...``, ``file://...``, read with Airflow's
``ObjectStoragePath``), or an attachment dict of a message record (``path``,
``filename``, ``content_type``), so ``{{ item.attachments }}`` forwards what was received.

:func:`attachment_requests` reads that value (pure); :func:`resolve` looks each file up
before anything is sent (it exists, is a regular file, the sizes add up to no more than
the limit); :func:`read_bytes` reads one file in chunks when its email goes out, one
email at a time, never more than the limit.

Paths that come from consumed data (a stranger's email flows into it) are confined: they
must lie under an allowed directory, by default the folder where received attachments
are written, so a mapping can never attach ``/etc/passwd``.
"""

from __future__ import annotations

import ast
import mimetypes
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.attachments import private_temp_root, safe_filename
from airflow_provider_mail.mail.params import DEFAULT_MAX_ATTACHMENT_BYTES

__all__ = ["DEFAULT_MAX_ATTACHMENT_BYTES", "attachment_requests", "read_bytes", "resolve"]

#: Most files one email may attach.
MAX_ATTACHMENTS = 100
#: Longest text ``attachments`` may be when a template rendered it (a list as text).
MAX_ATTACHMENTS_TEXT = 1024 * 1024
_CHUNK = 1024 * 1024

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# Content types a file cannot be sent as: MIME owns their structure (multipart) or forbids
# base64 for them (message/*, RFC 2046 section 5.2), and base64 is what keeps bytes intact.
_OPAQUE = "application/octet-stream"


@dataclass(frozen=True)
class AttachmentRequest:
    """One file an email should attach, as the DAG or the data named it (not checked yet)."""

    location: str
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class AttachmentFile:
    """One file an email attaches, checked: where it is, its name, type and size."""

    location: str
    filename: str
    content_type: str
    size: int


def _quoted(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def attachment_requests(value: object, label: str) -> list[AttachmentRequest]:
    """Read an ``attachments`` value: a path or URL, an attachment dict, or a list of them.

    Text that a template rendered from a list (``{{ item.attachments }}`` gives
    ``"[{'filename': ...}]"``) is read back as that list.

    >>> attachment_requests("/data/report.pdf", "The email")
    [AttachmentRequest(location='/data/report.pdf', filename=None, content_type=None)]
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = read_literal(value, label, "attachments")
    if isinstance(value, (str, os.PathLike, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise MailSendError(
            f"{label} has attachments of type {type(value).__name__}; give a path, a URL, an "
            "attachment dict of a received message, or a list of them."
        )
    requests = [_request(element, label) for element in value if element not in (None, "")]
    if len(requests) > MAX_ATTACHMENTS:
        raise MailSendError(
            f"{label} has {len(requests)} attachments, more than {MAX_ATTACHMENTS}; send "
            "fewer files per email."
        )
    return requests


def read_literal(text: str, label: str, field: str) -> object:
    """A list or dict that a template rendered as text, read back; other text as it is.

    A ``MapOperator`` renders every value as text, so ``{{ item.attachments }}`` arrives as
    ``"[{'filename': 'a.pdf', ...}]"``. Only Python literals are read (``ast.literal_eval``:
    no names, no calls), from at most :data:`MAX_ATTACHMENTS_TEXT` characters.
    """
    stripped = text.strip()
    if not stripped.startswith(("[", "{")):
        return stripped
    if len(stripped) > MAX_ATTACHMENTS_TEXT:
        raise MailSendError(
            f"{label} has {field} text longer than {MAX_ATTACHMENTS_TEXT} characters; pass "
            "the list or dict itself instead of rendering it as text."
        )
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise MailSendError(
            f"{label} has {field} text {_quoted(stripped)} that is not a list or dict; pass "
            "the value itself (for example data=receive.output)."
        ) from None


def _request(element: object, label: str) -> AttachmentRequest:
    if isinstance(element, os.PathLike):
        element = os.fspath(element)
    if isinstance(element, str):
        return AttachmentRequest(_checked_text(element, "attachment path", label))
    if isinstance(element, Mapping):
        location = element.get("path")
        if not isinstance(location, (str, os.PathLike)) or not str(location).strip():
            raise MailSendError(
                f"{label} has an attachment dict without a path; give the 'path' of the file "
                "(a received message's attachment dicts have one)."
            )
        filename = element.get("filename")
        content_type = element.get("content_type")
        return AttachmentRequest(
            _checked_text(os.fspath(location), "attachment path", label),
            None if filename is None else str(filename),
            None if content_type is None else str(content_type),
        )
    raise MailSendError(
        f"{label} has an attachment of type {type(element).__name__}; give a path, a URL or "
        "an attachment dict."
    )


def _checked_text(text: str, what: str, label: str) -> str:
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise MailSendError(f"{label} has a control character in an {what}; remove it.")
    return text.strip()


def local_path(location: str) -> str | None:
    """The local path of ``location`` (a path or a ``file://`` URL); ``None`` for a URL."""
    if location.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlparse(location).path)
    if _URL_SCHEME.match(location):
        return None
    return location


def default_allowed_dirs() -> tuple[str, ...]:
    """Where received attachments are written by default: this user's private temp folder."""
    return (str(private_temp_root()),)


def _is_under(location: str, roots: Sequence[str]) -> bool:
    path = local_path(location)
    if path is not None:
        real = os.path.realpath(path)
        for root in roots:
            root_path = local_path(root)
            if root_path is None:
                continue
            real_root = os.path.realpath(root_path)
            if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
                return True
        return False
    url = urllib.parse.urlsplit(location)
    if ".." in PurePosixPath(url.path).parts or url.query or url.fragment:
        return False
    for root in roots:
        if local_path(root) is not None:
            continue
        base = urllib.parse.urlsplit(root)
        base_path = base.path.rstrip("/") + "/"
        if (url.scheme, url.netloc) == (base.scheme, base.netloc) and (
            url.path.startswith(base_path) or url.path == base.path
        ):
            return True
    return False


def check_confined(
    requests: Sequence[AttachmentRequest], allowed_dirs: Sequence[str], label: str
) -> None:
    """Refuse a file from consumed data that is not under one of ``allowed_dirs``.

    Consumed data may come from a stranger's email; only files the receive step wrote
    (or another folder the DAG allows) may leave this way. Symbolic links are resolved
    before the check, and ``..`` in a URL is refused.
    """
    for request in requests:
        if not _is_under(request.location, allowed_dirs):
            raise MailSendError(
                f"{label} attaches {_quoted(request.location)}, which is outside the folders "
                "consumed data may attach from; add its folder to attachment_dirs, or attach "
                "it with the operator's own attachments parameter."
            )


def _content_type(request: AttachmentRequest, filename: str) -> str:
    given = (request.content_type or "").strip().lower()
    if not _CONTENT_TYPE.match(given):
        given = mimetypes.guess_type(filename, strict=False)[0] or _OPAQUE
    if given.startswith(("multipart/", "message/")):
        return _OPAQUE
    return given


def _filename(request: AttachmentRequest, location: str) -> str:
    name = request.filename
    if not name or not name.strip():
        name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(location).path).name)
        if local_path(location) is not None:
            name = os.path.basename(local_path(location) or "")
    return safe_filename(name)


def resolve(
    requests: Sequence[AttachmentRequest], label: str, max_bytes: int
) -> tuple[AttachmentFile, ...]:
    """Look up every file: it exists, is a regular file, and the total fits ``max_bytes``."""
    files = []
    total = 0
    for request in requests:
        size = _size(request.location, label)
        total += size
        if total > max_bytes:
            raise MailSendError(
                f"{label} has attachments of more than {_megabytes(max_bytes)} in total (the "
                f"limit reached at {_quoted(request.location)}); attach fewer or smaller files "
                "or raise max_attachment_bytes."
            )
        filename = _filename(request, request.location)
        files.append(
            AttachmentFile(request.location, filename, _content_type(request, filename), size)
        )
    return tuple(files)


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):g} MiB"


def _size(location: str, label: str) -> int:
    path = local_path(location)
    try:
        if path is not None:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                raise MailSendError(
                    f"{label} attaches {_quoted(location)}, which is not a regular file; "
                    "attach files only."
                )
            return info.st_size
        from airflow.sdk import ObjectStoragePath

        remote = ObjectStoragePath(location)
        if not remote.is_file():
            raise FileNotFoundError(location)
        return int(remote.stat().st_size)
    except MailSendError:
        raise
    except (OSError, ValueError) as err:
        reason = "does not exist" if isinstance(err, FileNotFoundError) else "cannot be read"
        raise MailSendError(
            f"{label} attaches {_quoted(location)}, which {reason} ({type(err).__name__}); "
            "check the path or URL and its connection."
        ) from None


def read_bytes(file: AttachmentFile, max_bytes: int) -> bytes:
    """The file's bytes, read in chunks; a file grown beyond ``max_bytes`` is refused."""
    path = local_path(file.location)
    chunks: list[bytes] = []
    size = 0
    try:
        if path is not None:
            stream: Any = open(path, "rb")  # noqa: SIM115 (closed below, for both kinds)
        else:
            from airflow.sdk import ObjectStoragePath

            stream = ObjectStoragePath(file.location).open("rb")  # type: ignore[no-untyped-call]
        with stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise MailSendError(
                        f"The attachment {_quoted(file.location)} grew beyond "
                        f"{_megabytes(max_bytes)} after the email was checked; it was not sent."
                    )
                chunks.append(chunk)
    except OSError as err:
        raise MailSendError(
            f"The attachment {_quoted(file.location)} could not be read "
            f"({type(err).__name__}); check that it still exists."
        ) from None
    return b"".join(chunks)
