"""Attachment file names and folders that a stranger or another local user prepared.

Real files in a temp dir; running as root lets the test hand a link to another user, as
an attacker on a shared host would own it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from airflow_provider_mail.mail import attachments
from airflow_provider_mail.mail.attachments import (
    DirectorySink,
    UnsafeDirectoryError,
    default_attachments_dir,
    private_temp_root,
    safe_filename,
)
from airflow_provider_mail.mail.parse import build_record

NOBODY = 65534


@pytest.mark.parametrize(
    ("sent", "saved"),
    [
        ("invoice\u202efdp.exe", "invoice_fdp.exe"),  # shows as "invoiceexe.pdf"
        ("a\u2066b\u2069.txt", "a_b_.txt"),  # isolates
        ("x\u200by\u200d.pdf", "x_y_.pdf"),  # zero-width space and joiner
        ("\ufeffname.txt", "_name.txt"),  # byte order mark
        ("line\u2028sep.txt", "line_sep.txt"),
        ("ok-Ünïcödé name.pdf", "ok-Ünïcödé name.pdf"),  # visible text is kept
    ],
)
def test_invisible_and_bidi_characters_are_neutralised_on_disk(sent: str, saved: str) -> None:
    assert safe_filename(sent) == saved


def test_the_record_keeps_the_name_as_sent(tmp_path: Path) -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n"
        b"see\r\n--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n"
    )
    record = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))
    [attachment] = record["attachments"]
    assert attachment["filename"] == "invoice\u202efdp.exe"
    assert Path(attachment["path"]).name == "invoice_fdp.exe"


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /tmp: writable by everyone, sticky."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setattr(attachments.tempfile, "gettempdir", lambda: str(shared))
    return shared


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a link to another user")
def test_a_link_another_user_planted_in_a_shared_dir_is_refused(
    shared_tmp: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim-home"
    victim.mkdir()
    link = shared_tmp / "mail"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(UnsafeDirectoryError, match=r"symbolic link .* another user"):
        DirectorySink(link / "attachments").save("INBOX-1-1", "a.txt", "text/plain", b"x")
    assert list(victim.iterdir()) == []


def test_a_link_this_user_made_is_followed(shared_tmp: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (shared_tmp / "mine").symlink_to(target)
    path = DirectorySink(shared_tmp / "mine" / "att").save("k", "a.txt", "text/plain", b"x")
    assert Path(path).read_bytes() == b"x"


def test_the_default_folder_is_per_user_and_private(shared_tmp: Path) -> None:
    root = private_temp_root()
    assert root.parent == shared_tmp and root.name == f"airflow-provider-mail-{os.getuid()}"
    path = DirectorySink(default_attachments_dir("dag", "run", "task")).save(
        "k", "a.txt", "text/plain", b"x"
    )
    assert Path(path).is_relative_to(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to prepare another user's folder")
@pytest.mark.parametrize("prepared", ["link", "other_owner", "open_mode"])
def test_a_default_folder_someone_else_prepared_is_refused(
    prepared: str, shared_tmp: Path, tmp_path: Path
) -> None:
    root = private_temp_root()
    if prepared == "link":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        root.symlink_to(elsewhere)
        os.lchown(root, NOBODY, NOBODY)
    else:
        root.mkdir(mode=0o700)
        if prepared == "other_owner":
            os.chown(root, NOBODY, NOBODY)
        else:
            root.chmod(0o777)
    with pytest.raises(UnsafeDirectoryError):
        DirectorySink(default_attachments_dir("dag", "run", "task")).save(
            "k", "a.txt", "text/plain", b"x"
        )
