"""Attachment file names from strangers never leave the attachments directory."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from airflow_provider_mail.mail import attachments
from airflow_provider_mail.mail.attachments import (
    MAX_FILENAME_BYTES,
    DirectorySink,
    default_attachments_dir,
    private_temp_root,
    safe_filename,
)

HOSTILE_NAMES = [
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\evil\\x.txt",
    "..",
    ".",
    "",
    "   ",
    "a\x00b.txt",
    "line\r\nbreak.txt",
    ".bashrc",
    "..\\..\\boot.ini",
    "dir/../../x",
    "CON",
    "nul.txt",
    "x" * 5000 + ".pdf",
    "é" * 300 + ".txt",
    None,
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\evil\\x.txt", "x.txt"),
        ("..", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
        ("a\x00b\r\nc.txt", "a_b__c.txt"),
        (".bashrc", "bashrc"),
        ("report. ", "report"),
        ('what?<"is">*this|.txt', "what___is___this_.txt"),
        ("CON", "_CON"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("Résumé 2024.pdf", "Résumé 2024.pdf"),
        ("report.pdf", "report.pdf"),
    ],
)
def test_safe_filename_examples(name: str | None, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_filename_is_one_plain_component(name: str | None) -> None:
    safe = safe_filename(name)
    assert safe
    assert "/" not in safe and "\\" not in safe
    assert safe not in (".", "..")
    assert not safe.startswith(".")
    assert not any(ord(character) < 32 or ord(character) == 127 for character in safe)
    assert len(safe.encode()) <= MAX_FILENAME_BYTES


def test_long_names_keep_their_extension() -> None:
    safe = safe_filename("x" * 5000 + ".pdf")
    assert safe.endswith(".pdf")
    assert len(safe.encode()) == MAX_FILENAME_BYTES


def test_long_multibyte_names_are_cut_on_a_character_boundary() -> None:
    safe = safe_filename("é" * 300 + ".txt")
    assert safe.endswith(".txt")
    assert set(safe.removesuffix(".txt")) == {"é"}
    assert len(safe.encode()) <= MAX_FILENAME_BYTES


def test_fallback_is_used_and_made_safe() -> None:
    assert safe_filename(None, fallback="attachment.pdf") == "attachment.pdf"
    assert safe_filename("..", fallback="../up.txt") == "up.txt"
    assert safe_filename("", fallback="") == "attachment"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_directory_sink_writes_inside_root(tmp_path: Path, name: str | None) -> None:
    root = tmp_path / "root"
    sink = DirectorySink(root)
    path = Path(sink.save("../../message", name, "text/plain", b"payload"))
    assert path.resolve().is_relative_to(root.resolve())
    assert path.parent.parent == root
    assert path.read_bytes() == b"payload"
    assert list(tmp_path.iterdir()) == [root]


def test_same_name_twice_in_one_message_does_not_overwrite(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    first = sink.save("INBOX-1-7", "report.pdf", "application/pdf", b"first")
    second = sink.save("INBOX-1-7", "report.pdf", "application/pdf", b"second")
    third = sink.save("INBOX-1-7", "REPORT.pdf", "application/pdf", b"third")
    assert [Path(p).name for p in (first, second, third)] == [
        "report.pdf",
        "report-2.pdf",
        "REPORT-3.pdf",
    ]
    assert [Path(p).read_bytes() for p in (first, second, third)] == [b"first", b"second", b"third"]


def test_hostile_names_that_sanitise_alike_do_not_overwrite(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    paths = [
        sink.save("m", name, "text/plain", str(number).encode())
        for number, name in enumerate(["../passwd", "/passwd", "passwd", "C:\\passwd"])
    ]
    assert len(set(paths)) == 4
    assert [Path(p).read_bytes() for p in paths] == [b"0", b"1", b"2", b"3"]


def test_each_message_gets_its_own_folder(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    first = Path(sink.save("INBOX-1-1", "a.txt", "text/plain", b"1"))
    second = Path(sink.save("INBOX-1-2", "a.txt", "text/plain", b"2"))
    assert first.name == second.name == "a.txt"
    assert first.parent != second.parent


def test_saving_a_message_again_replaces_its_files(tmp_path: Path) -> None:
    # A retried task saves the same message with a new sink: no "report-2.pdf" pile-up.
    first = DirectorySink(tmp_path).save("INBOX-1-1", "report.pdf", "application/pdf", b"old")
    second = DirectorySink(tmp_path).save("INBOX-1-1", "report.pdf", "application/pdf", b"new")
    assert first == second
    assert Path(second).read_bytes() == b"new"


def test_nameless_attachments_get_an_extension_from_their_type(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    assert Path(sink.save("m", None, "image/png", b"")).name == "attachment.png"
    assert Path(sink.save("m", None, "message/rfc822", b"")).name == "attachment.eml"
    assert Path(sink.save("m", None, "application/x-unknown-thing", b"")).name == "attachment"


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")
def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    (root / "m").mkdir(parents=True)
    (root / "m" / "report.txt").symlink_to(outside)
    with pytest.raises(OSError):
        DirectorySink(root).save("m", "report.txt", "text/plain", b"overwritten")
    assert outside.read_bytes() == b"precious"


def test_a_planted_symlinked_message_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir()
    (root / "m").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PermissionError):
        DirectorySink(root).save("m", "report.txt", "text/plain", b"data")
    assert list(elsewhere.iterdir()) == []


def test_object_storage_file_url_root(tmp_path: Path) -> None:
    sink = DirectorySink(f"file://{tmp_path}/store")
    first = sink.save("INBOX-5-9", "../../x.pdf", "application/pdf", b"one")
    second = sink.save("INBOX-5-9", "x.pdf", "application/pdf", b"two")
    assert first == f"file://{tmp_path}/store/INBOX-5-9/x.pdf"
    assert second == f"file://{tmp_path}/store/INBOX-5-9/x-2.pdf"
    assert (tmp_path / "store" / "INBOX-5-9" / "x.pdf").read_bytes() == b"one"
    assert (tmp_path / "store" / "INBOX-5-9" / "x-2.pdf").read_bytes() == b"two"


def test_object_storage_path_root_is_used_as_given(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    try:
        root = ObjectStoragePath(f"file://{tmp_path}/osp")
    except TypeError:
        pytest.skip("Airflow 3.0's ObjectStoragePath has no file:// (DirectorySink takes the URL)")
    path = DirectorySink(root).save("m", "/etc/passwd", "text/plain", b"data")
    assert path == f"file://{tmp_path}/osp/m/passwd"
    assert (tmp_path / "osp" / "m" / "passwd").read_bytes() == b"data"


def test_default_attachments_dir_is_under_the_temp_dir() -> None:
    directory = default_attachments_dir("my_dag", "manual__2024-05-01T09:30:00+00:00", "../task")
    base = private_temp_root()
    assert Path(directory).parent.parent.parent == base
    assert Path(directory).relative_to(base).parts == (
        "my_dag",
        "manual__2024-05-01T09_30_00+00_00",
        "task",
    )


def test_plain_names_take_the_short_cut_to_the_same_answer() -> None:
    """safe_filename's short cut for plain ASCII names answers what the full steps answer."""
    generator = random.Random(6266)
    pieces = [
        "a",
        "Z",
        "0",
        "-",
        "_",
        ".",
        " ",
        "..",
        "+",
        "=",
        ",",
        "@",
        "pdf",
        ".pdf",
        "con",
        "CON",
        "lpt1",
        "Aux",
        "nul.txt",
        "x" * 60,
        "/",
        "\\",
        ":",
        "é",
        "\t",
        "~",
        "*",
    ]
    short_cut = 0
    for _ in range(30_000):
        name = "".join(generator.choice(pieces) for _ in range(generator.randrange(0, 9)))
        short_cut += attachments._PLAIN_NAME.fullmatch(name) is not None
        assert safe_filename(name) == attachments._sanitized(name, "attachment"), name
    assert short_cut > 3_000
