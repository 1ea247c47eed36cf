"""Where attachments go: safe file names and a sink that writes them under one directory.

The file names in an email come from strangers. ``safe_filename`` turns any of them into a
plain name that cannot leave the directory it is written to, and ``DirectorySink`` writes
each attachment to ``<root>/<message key>/<safe unique name>``, locally or on any Airflow
object storage (``s3://``, ``gs://``, ``file://``...).
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import re
import stat
import tempfile
import unicodedata
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = [
    "AttachmentSink",
    "DirectorySink",
    "default_attachments_dir",
    "message_key",
    "safe_filename",
]

# Room for a "-NNN" suffix within the 255-byte limit of common file systems and object keys.
MAX_FILENAME_BYTES = 200
_MAX_EXTENSION_BYTES = 16

_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*]')
# Invisible format characters (right-to-left override U+202E, isolates, zero-width
# joiners, byte order marks...), line and paragraph separators and lone surrogates: they
# make "invoice\u202efdp.exe" display as "invoiceexe.pdf" in a file manager.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# ASCII names that the steps of safe_filename leave as they are: no character to replace,
# nothing to strip at either end ("report-2024.pdf", "INBOX-1700000000-42").
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_+=,@-](?:[A-Za-z0-9 _+=,@.-]*[A-Za-z0-9_+=,@-])?")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Names Windows reserves in every directory, with or without an extension.
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{digit}" for digit in range(10)}
    | {f"lpt{digit}" for digit in range(10)}
)
_EXTENSIONS = {
    "application/octet-stream": ".bin",
    "message/rfc822": ".eml",
    "text/plain": ".txt",
    "text/html": ".html",
}


class AttachmentSink(Protocol):
    """Something that stores attachment bytes and says where they went.

    ``build_record`` calls :meth:`save` once per attachment. Implement it to send
    attachments somewhere else than a directory (a database, an API...).
    """

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        """Store one attachment; return where it went (a local path or an object-storage URL).

        :param message_key: a file-system-safe key, unique per message (for example
            ``INBOX-1700000000-42`` for IMAP UIDVALIDITY 1700000000, UID 42).
        :param filename: the decoded file name as the sender wrote it (possibly unsafe),
            or ``None`` when the message gave none.
        :param content_type: the part's MIME type, for example ``application/pdf``.
        :param data: the decoded bytes of the attachment.
        """
        ...


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """Turn a file name from an email into one that stays inside its directory.

    Keeps only the last path component (``../../etc/passwd`` -> ``passwd``,
    ``C:\\evil\\x.txt`` -> ``x.txt``), replaces control characters, invisible format
    characters (such as the right-to-left override) and characters that Windows forbids
    with ``_``, drops leading dots and spaces (no hidden files, no ``..``),
    avoids Windows device names, and shortens long names to ``MAX_FILENAME_BYTES`` bytes
    of UTF-8 while keeping the extension. An empty result becomes ``fallback``.

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename(None)
    'attachment'
    """
    if name is None:
        return _fallback_name(fallback)
    if _is_plain(name):
        return name  # what _sanitized gives for it (tests/unit/test_attachments.py)
    return _sanitized(name, fallback)


def _is_plain(name: str) -> bool:
    """Whether ``name`` is its own safe name: the steps of :func:`_sanitized` keep it."""
    return (
        len(name) <= MAX_FILENAME_BYTES
        and _PLAIN_NAME.fullmatch(name) is not None
        and name.partition(".")[0].lower() not in _WINDOWS_RESERVED
    )


def _sanitized(name: str, fallback: str) -> str:
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_CHARACTERS.sub("_", name)
    if not name.isascii():  # no ASCII character is in an invisible category
        name = "".join(
            "_" if unicodedata.category(char) in _INVISIBLE_CATEGORIES else char for char in name
        )
    name = name.strip(" ").lstrip(".").rstrip(". ")
    if not name:
        return _fallback_name(fallback)
    stem, extension = _split_extension(name)
    if stem.split(".")[0].lower() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    return shorten_filename(stem, extension)


def private_temp_root() -> Path:
    """``<system temp dir>/airflow-provider-mail-<uid>``: this user's own attachments folder.

    Per user, because the temp dir is shared on multi-user hosts: another user must not be
    able to read the attachments, nor to prepare the folder (or a symbolic link in its
    place) so that they land somewhere of their choosing. :class:`DirectorySink` creates
    it private (mode 700) and refuses it when it is not.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    suffix = "" if uid is None else f"-{uid}"
    return Path(tempfile.gettempdir()) / f"airflow-provider-mail{suffix}"


def default_attachments_dir(*parts: str) -> str:
    """``<system temp dir>/airflow-provider-mail-<uid>/<parts...>``, each part made safe.

    The sensor's default ``attachments_dir`` is
    ``default_attachments_dir(dag_id, run_id, task_id)``, so every run gets its own folder.
    """
    directory = private_temp_root()
    for part in parts:
        directory /= safe_filename(part, fallback="_")
    return str(directory)


class DirectorySink:
    """Write attachments under one directory: ``<root>/<message key>/<safe unique name>``.

    :param root: a local directory (``/data/mail``) or an Airflow object-storage URL
        (``s3://bucket/mail``, ``gs://bucket/mail``, ``file:///data/mail``) or an
        ``ObjectStoragePath`` (which keeps its ``conn_id``). Directories are created as needed.

    Two attachments with the same name in one message get distinct files (``report.pdf``,
    ``report-2.pdf``). Saving the same message again (a retried task) overwrites its earlier
    files instead of piling up copies. Locally, the folders and files it creates are private
    to the worker's user (mode 700 / 600) and symbolic links are never followed inside
    ``root``.

    >>> sink = DirectorySink("s3://my-bucket/mail")  # doctest: +SKIP
    >>> sink.save("INBOX-17-42", "report.pdf", "application/pdf", b"%PDF-...")  # doctest: +SKIP
    's3://my-bucket/mail/INBOX-17-42/report.pdf'
    """

    def __init__(self, root: str | os.PathLike[str] | ObjectStoragePath) -> None:
        self._root: Path | ObjectStoragePath
        # file:// is this machine's disk: written like a directory, named as a URL. (The
        # ObjectStoragePath of Airflow 3.0/3.1 cannot create folders under file:// URLs.)
        self._file_url = False
        if isinstance(root, str) and root.startswith("file://"):
            root = urllib.parse.urlparse(root).path
            self._file_url = True
        elif getattr(root, "protocol", None) in ("file", "local"):  # an ObjectStoragePath
            root = str(getattr(root, "path"))  # noqa: B009 (a PathLike has no .path in mypy)
            self._file_url = True
        if isinstance(root, str) and _URL_SCHEME.match(root):
            from airflow.sdk import ObjectStoragePath

            self._root = ObjectStoragePath(root)
        elif isinstance(root, (str, os.PathLike)):
            self._root = Path(root)
        else:
            self._root = root
        self._taken: dict[str, set[str]] = {}
        self._root_checked = False
        # Per message key: its folder name; per folder this sink has made sure of locally,
        # its path (a message's attachments then cost one open, write and close each).
        self._folders: dict[str, str] = {}
        self._local: dict[str, str] = {}

    @property
    def root(self) -> str:
        """The root directory or URL, as given (``str``)."""
        return self._as_given(str(self._root))

    def _as_given(self, path: str) -> str:
        return f"file://{path}" if self._file_url else path

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        """Write one attachment and return its path (local) or URL (object storage)."""
        folder = self._folders.get(message_key)
        if folder is None:
            folder = self._folders[message_key] = safe_filename(message_key, fallback="message")
        name = self._unique_name(folder, _name_for(filename, content_type))
        if isinstance(self._root, Path):
            if not self._root_checked:
                check_local_root(self._root)
                self._root_checked = True
            local = self._local.get(folder)
            if local is None:
                local = str(self._root / folder)
                _make_private_folder(self._root, local)
                self._local[folder] = local
            return self._as_given(_write_local(local, name, data))
        directory = self._root / folder
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        target.write_bytes(data)
        return str(target)

    def _unique_name(self, folder: str, name: str) -> str:
        # Case-insensitive: "Report.pdf" and "report.pdf" are one file on macOS and Windows.
        taken = self._taken.setdefault(folder, set())
        stem, extension = _split_extension(name)
        candidate = name
        counter = 1
        while candidate.casefold() in taken:
            counter += 1
            candidate = shorten_filename(stem, extension, suffix=f"-{counter}")
        taken.add(candidate.casefold())
        return candidate


class UnsafeDirectoryError(PermissionError):
    """``attachments_dir`` could lead somewhere another user chose."""


def check_local_root(root: Path) -> None:
    """Refuse a local ``attachments_dir`` that another user could redirect or read.

    * The per-user default under the temp dir (:func:`private_temp_root`) is created with
      mode 700 and must be a real directory of this user, private to it.
    * No existing part of the path may be a symbolic link that another user planted in a
      directory others can write (``/tmp/x -> /home/victim``): such a link is refused.
      Links an administrator made (``/tmp -> /private/tmp`` on macOS) or this user made
      are followed as usual.
    """
    absolute = Path(os.path.abspath(root))
    private = private_temp_root()
    if absolute == private or private in absolute.parents:
        _ensure_private(private)
    uid = os.getuid() if hasattr(os, "getuid") else None
    for part in (absolute, *absolute.parents):
        try:
            info = part.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(info.st_mode) or uid is None or info.st_uid in (uid, 0):
            continue
        if part.parent.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UnsafeDirectoryError(
                f"attachments_dir {str(root)!r} goes through the symbolic link {str(part)!r}, "
                "which another user created in a directory everyone can write; remove the "
                "link or choose another attachments_dir."
            )


def _ensure_private(directory: Path) -> None:
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = directory.lstat()
    uid = os.getuid() if hasattr(os, "getuid") else info.st_uid
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != uid
        or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ):
        raise UnsafeDirectoryError(
            f"{str(directory)!r} is not a private directory of this user (a symbolic link, "
            "another user's, or open to others); remove it, or set attachments_dir."
        )


def _make_private_folder(root: Path, path: str) -> None:
    """Create the folder ``path`` in ``root`` (mode 700), or check that the existing one is
    no symlink."""
    try:
        os.mkdir(path, 0o700)
        return  # made just now: a real directory of ours
    except FileNotFoundError:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        Path(path).mkdir(mode=0o700, exist_ok=True)
    except FileExistsError:
        pass
    directory = Path(path)
    # The folder is one safe name (no separator, no ".."), so only a symlink planted in a
    # shared temp dir could lead elsewhere; lstat is enough to catch it, and far cheaper
    # than resolving the whole path for every attachment.
    if directory.is_symlink():
        raise PermissionError(
            f"{directory} is a symbolic link or leads outside {root}; remove it or choose "
            "another attachments_dir."
        )


_WRITE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)


def _write_local(directory: str, name: str, data: bytes) -> str:
    target = f"{directory}{os.sep}{name}"
    descriptor = os.open(target, _WRITE_FLAGS, 0o600)
    try:
        with memoryview(data) as view:
            written = 0
            while written < len(view):
                written += os.write(descriptor, view[written:])
    finally:
        os.close(descriptor)
    return target


def _name_for(filename: str | None, content_type: str) -> str:
    if filename is not None and _is_plain(filename):
        return filename  # the fallback's extension is not needed
    extension = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    return safe_filename(filename, fallback=f"attachment{extension}")


def _fallback_name(fallback: str) -> str:
    # Terminates: "attachment" is its own safe name.
    return safe_filename(fallback) if fallback else "attachment"


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode()) >= _MAX_EXTENSION_BYTES:
        return name, ""
    return stem, f".{extension}"


def shorten_filename(stem: str, extension: str, suffix: str = "") -> str:
    """``stem + suffix + extension`` within :data:`MAX_FILENAME_BYTES`, cutting only the stem."""
    budget = MAX_FILENAME_BYTES - len(extension.encode()) - len(suffix.encode())
    encoded = stem.encode()
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", "ignore").rstrip(". ") or "attachment"
    return f"{stem}{suffix}{extension}"


def message_key(
    raw: bytes,
    *,
    folder: str,
    uid: int | None = None,
    uidvalidity: int | None = None,
    uidl: str | None = None,
) -> str:
    """A file-name-safe key unique to one message, naming its attachments folder.

    IMAP: ``<folder>-<uidvalidity>-<uid>`` (UIDs are unique only per folder and
    UIDVALIDITY), or ``<folder>-<uid>`` without UIDVALIDITY; POP3: ``pop3-<uidl>``;
    otherwise ``sha256-<first 16 hex digits>`` of the raw bytes. Characters a file name
    cannot hold are replaced, and a short hash of the original keeps such keys distinct.

    >>> message_key(b"...", folder="INBOX", uid=42, uidvalidity=1700000000)
    'INBOX-1700000000-42'
    """
    if uid is not None:
        parts = [folder, uidvalidity, uid] if uidvalidity is not None else [folder, uid]
        return _safe_key("-".join(map(str, parts)))
    if uidl is not None:
        return _safe_key(f"pop3-{uidl}")
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:16]}"


def _safe_key(key: str) -> str:
    safe = safe_filename(key, fallback="message")
    if safe == key:
        return key
    # Two keys that differ only in unsafe characters must not share a folder: the hash
    # suffix must survive the byte limit of a file name, however wide the characters.
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:8]
    return shorten_filename(safe[:100], "", suffix=f"-{digest}")
