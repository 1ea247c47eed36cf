"""Files for outgoing email: reading the attachments value, confinement, sizes, types."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import pytest

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.outgoing import (
    MAX_ATTACHMENTS,
    AttachmentRequest,
    attachment_requests,
    check_confined,
    read_bytes,
    resolve,
)

LABEL = "Item 0"


def test_a_path_a_dict_and_a_list_of_both() -> None:
    assert attachment_requests("/data/a.pdf", LABEL) == [AttachmentRequest("/data/a.pdf")]
    record_attachment = {
        "filename": "a.pdf",
        "content_type": "application/pdf",
        "size": 3,
        "path": "/data/x/a.pdf",
    }
    assert attachment_requests([record_attachment, Path("/data/b.csv")], LABEL) == [
        AttachmentRequest("/data/x/a.pdf", "a.pdf", "application/pdf"),
        AttachmentRequest("/data/b.csv"),
    ]
    assert attachment_requests(None, LABEL) == [] == attachment_requests([], LABEL)


def test_a_list_a_template_rendered_as_text_is_read_back() -> None:
    rendered = str([{"filename": 'it\'s "odd".pdf', "path": "/d/a.pdf", "content_type": None}])
    assert attachment_requests(rendered, LABEL) == [
        AttachmentRequest("/d/a.pdf", 'it\'s "odd".pdf', None)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[__import__('os').system('id')]",
        "[" * 100_000,
        "{'path': open('/etc/passwd')}",
        "[1, 2",
    ],
)
def test_rendered_text_is_only_ever_read_as_a_literal(text: str) -> None:
    with pytest.raises(MailSendError, match="not a list or dict"):
        attachment_requests(text, LABEL)


def test_rendered_text_is_bounded() -> None:
    with pytest.raises(MailSendError, match="longer than"):
        attachment_requests("[" + "'/a', " * 300_000 + "]", LABEL)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "of type int"),
        ([{"filename": "a.pdf"}], "without a path"),
        ([{"path": ""}], "without a path"),
        (["/tmp/a\r\nb"], "control character"),
        ([3.5], "of type float"),
        (["/a"] * (MAX_ATTACHMENTS + 1), "more than"),
    ],
)
def test_wrong_values_are_one_sentence(value: object, message: str) -> None:
    with pytest.raises(MailSendError, match=message):
        attachment_requests(value, LABEL)


def test_data_may_attach_only_under_the_allowed_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "received"
    allowed.mkdir()
    (allowed / "a.pdf").write_bytes(b"%PDF")
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    (allowed / "link.txt").symlink_to(secret)
    roots = [str(allowed)]
    check_confined([AttachmentRequest(str(allowed / "a.pdf"))], roots, LABEL)
    check_confined([AttachmentRequest(f"file://{allowed}/a.pdf")], roots, LABEL)
    for escape in (
        str(secret),
        str(allowed / ".." / "secret.txt"),
        str(allowed / "link.txt"),  # a symbolic link out of the folder
        f"file://{secret}",
        f"{allowed}-evil/a.pdf",  # a sibling whose name starts like the folder
        "/etc/passwd",
        "s3://bucket/received/a.pdf",
    ):
        with pytest.raises(MailSendError, match="outside the folders"):
            check_confined([AttachmentRequest(escape)], roots, LABEL)


def test_object_storage_urls_are_confined_by_prefix() -> None:
    roots = ["s3://bucket/mail"]
    check_confined([AttachmentRequest("s3://bucket/mail/INBOX-1-2/a.pdf")], roots, LABEL)
    for escape in (
        "s3://bucket/mail/../secrets/key",
        "s3://bucket/mail-other/a.pdf",
        "s3://other/mail/a.pdf",
        "gs://bucket/mail/a.pdf",
        "s3://bucket/mail/a.pdf?versionId=1",
        "/tmp/a.pdf",
    ):
        with pytest.raises(MailSendError, match="outside the folders"):
            check_confined([AttachmentRequest(escape)], roots, LABEL)


def test_resolve_guesses_types_and_makes_names_safe(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "data").write_bytes(b"\x00\x01")
    files = resolve(
        [
            AttachmentRequest(str(tmp_path / "report.pdf")),
            AttachmentRequest(str(tmp_path / "data")),
            AttachmentRequest(str(tmp_path / "data"), "../../etc/passwd\u202egpj.exe", "x"),
            AttachmentRequest(str(tmp_path / "data"), "mail.eml", "message/rfc822"),
            AttachmentRequest(str(tmp_path / "data"), "a.csv", "Text/CSV"),
        ],
        LABEL,
        1000,
    )
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("report.pdf", "application/pdf", 8),
        ("data", "application/octet-stream", 2),
        ("passwd_gpj.exe", mimetypes.guess_type("x.exe", strict=False)[0], 2),
        # message/* may not be base64 (RFC 2046), and base64 keeps the bytes intact
        ("mail.eml", "application/octet-stream", 2),
        ("a.csv", "text/csv", 2),
    ]


def test_the_total_size_limit_is_one_sentence(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x" * 600)
    requests = [AttachmentRequest(str(tmp_path / name)) for name in ("a", "b")]
    assert len(resolve(requests, LABEL, 1200)) == 2
    with pytest.raises(MailSendError) as raised:
        resolve(requests, LABEL, 1000)
    assert str(raised.value).count(".") >= 1 and "max_attachment_bytes" in str(raised.value)
    assert str(raised.value).startswith("Item 0 has attachments of more than")


def test_missing_files_and_devices_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MailSendError, match="does not exist"):
        resolve([AttachmentRequest(str(tmp_path / "nope"))], LABEL, 1000)
    with pytest.raises(MailSendError, match="not a regular file"):
        resolve([AttachmentRequest("/dev/zero")], LABEL, 1000)
    with pytest.raises(MailSendError, match="not a regular file"):
        resolve([AttachmentRequest(str(tmp_path))], LABEL, 1000)


def test_a_file_that_grew_after_the_check_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"x" * 10)
    [file] = resolve([AttachmentRequest(str(path))], LABEL, 100)
    assert read_bytes(file, 100) == b"x" * 10
    path.write_bytes(b"x" * 101)
    with pytest.raises(MailSendError, match="grew beyond"):
        read_bytes(file, 100)
    os.remove(path)
    with pytest.raises(MailSendError, match="could not be read"):
        read_bytes(file, 100)
