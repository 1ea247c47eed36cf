"""The record fields in_reply_to, references and automatic, on honest and hostile headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_mail.mail.attachments import DirectorySink
from airflow_provider_mail.mail.parse import build_record
from airflow_provider_mail.mail.replies import (
    MAX_MESSAGE_ID_CHARS,
    MAX_REFERENCES,
    message_ids,
    reply_fields,
)

LONGEST_ID = "<" + "a" * (MAX_MESSAGE_ID_CHARS - 2) + ">"


def record(headers: str, tmp_path: Path) -> dict[str, object]:
    raw = (headers.replace("\n", "\r\n") + "\r\nbody\r\n").encode("utf-8", "surrogateescape")
    return build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))


def fields(*headers: tuple[str, str]) -> dict[str, object]:
    return reply_fields(headers)


def test_a_reply_in_a_thread(tmp_path: Path) -> None:
    result = record(
        "From: a@example.org\nSubject: Re: hi\nMessage-ID: <3@x>\n"
        "In-Reply-To: <2@x> (Bob's message)\n"
        "References: <1@x>\n <2@x>\n",
        tmp_path,
    )
    assert (result["in_reply_to"], result["references"], result["automatic"]) == (
        "<2@x>",
        ["<1@x>", "<2@x>"],
        False,
    )


def test_a_message_without_thread_headers(tmp_path: Path) -> None:
    result = record("From: a@example.org\nSubject: hi\n", tmp_path)
    assert (result["in_reply_to"], result["references"], result["automatic"]) == (None, [], False)


def test_an_unparseable_message_still_has_the_fields(tmp_path: Path) -> None:
    result = build_record(b"", folder="INBOX", attachments=DirectorySink(tmp_path))
    assert (result["in_reply_to"], result["references"], result["automatic"]) == (None, [], False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@y>", "<a@x>"),
        ("garbage <a@x>", "<a@x>"),
        ("no id at all", None),
        ("<>", None),
        ("<a b@x>", None),  # a space inside is no id
        ("<a\r\n @x>", None),  # folded inside: unfolded it still holds a space
        ("<<a@x>>", "<a@x>"),
        ("<a@x\x00>", None),
        ("<caf\u00e9@x>", None),  # non-ASCII is no id
        ("=?utf-8?q?<a@x>?=", "<a@x>"),
        (LONGEST_ID, LONGEST_ID),
        (LONGEST_ID.replace("<", "<a"), None),
    ],
)
def test_in_reply_to_takes_the_first_well_formed_id(value: str, expected: str | None) -> None:
    assert fields(("In-Reply-To", value))["in_reply_to"] == expected


def test_duplicated_in_reply_to_takes_the_first_header_with_an_id() -> None:
    result = fields(("In-Reply-To", "junk"), ("in-reply-to", "<b@x>"), ("IN-REPLY-TO", "<c@x>"))
    assert result["in_reply_to"] == "<b@x>"


def test_duplicated_references_are_joined_without_repeats() -> None:
    result = fields(("References", "<1@x> <2@x>"), ("References", "<2@x> <3@x>"))
    assert result["references"] == ["<1@x>", "<2@x>", "<3@x>"]


def test_a_huge_references_header_keeps_the_root_and_the_newest_ids() -> None:
    ids = [f"<{number}@x>" for number in range(200_000)]
    result = fields(("References", "\r\n ".join(ids)))
    references = result["references"]
    assert isinstance(references, list)
    assert len(references) == MAX_REFERENCES
    assert references[0] == "<0@x>"
    assert references[1:] == ids[-(MAX_REFERENCES - 1) :]


def test_garbage_between_references_is_skipped() -> None:
    value = "<1@x> ((nested comment)) <not an id> \x00\x7f <2@x> <" + ">" * 1000
    assert fields(("References", value))["references"] == ["<1@x>", "<2@x>"]


def test_message_ids_undo_folding() -> None:
    assert message_ids("<1@x>\r\n\t<2@x>\n <3@x>") == ["<1@x>", "<2@x>", "<3@x>"]


@pytest.mark.parametrize(
    "header",
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated; owner-email=x@y"),
        ("Auto-Submitted", "AUTO-NOTIFIED"),
        ("Auto-Submitted", "something-new"),
        ("Auto-Submitted", ""),  # present but empty: not "no", so machine-sent
        ("Precedence", "bulk"),
        ("Precedence", " Junk "),
        ("Precedence", "list (mailing list)"),
        ("List-Id", "<team.lists.example.org>"),
        ("Return-Path", "<>"),
        ("Return-Path", " "),
        ("From", "Mail Delivery System <MAILER-DAEMON@example.org>"),
        ("From", "postmaster@example.org"),
        ("Sender", "MAILER-DAEMON"),
        ("Return-Path", "<postmaster@example.org>"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "Out of office"),
        ("X-Auto-Response-Suppress", "DR, OOF, AutoReply"),
        ("X-Auto-Response-Suppress", "All"),
    ],
)
def test_machine_sent_mail_is_automatic(header: tuple[str, str]) -> None:
    assert fields(("From", "someone@example.org"), header)["automatic"] is True


@pytest.mark.parametrize(
    "header",
    [
        ("Auto-Submitted", "no"),
        ("Auto-Submitted", " No (a person wrote this)"),
        ("Precedence", "first-class"),
        ("Return-Path", "<bob@example.org>"),
        ("From", "Postmaster General <bob@example.org>"),
        ("From", "daemon-fan@example.org"),
        ("From", "mailer-daemons@example.org"),
        ("X-Autoreply", "no"),
        ("X-Auto-Response-Suppress", "DR, RN"),
        ("Subject", "Auto-Submitted: auto-replied"),
    ],
)
def test_mail_a_person_sent_is_not_automatic(header: tuple[str, str]) -> None:
    assert fields(("From", "someone@example.org"), header)["automatic"] is False


def test_one_no_among_duplicated_auto_submitted_headers_does_not_hide_the_other() -> None:
    result = fields(("Auto-Submitted", "no"), ("Auto-Submitted", "auto-replied"))
    assert result["automatic"] is True


def test_a_folded_auto_submitted_header_is_read(tmp_path: Path) -> None:
    result = record("From: a@example.org\nAuto-Submitted:\n auto-replied\n", tmp_path)
    assert result["automatic"] is True


def test_a_bounce_in_the_corpus_is_automatic(tmp_path: Path) -> None:
    corpus = Path(__file__).resolve().parent.parent / "corpus"
    raw = (corpus / "delivery_status.eml").read_bytes()
    result = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))
    assert result["automatic"] is True


def test_8bit_garbage_in_the_headers_does_not_break_the_record(tmp_path: Path) -> None:
    raw = (
        b"From: \xff\xfe@example.org\r\nIn-Reply-To: \xff<a@x>\r\n"
        b"References: <\xff@x> <b@x>\r\nAuto-Submitted: \xffno\r\n\r\nbody\r\n"
    )
    result = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))
    assert (result["in_reply_to"], result["references"], result["automatic"]) == (
        "<a@x>",
        ["<b@x>"],
        True,
    )
