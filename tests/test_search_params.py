"""``after_receive``, ``move_to`` and ``search``: validation, the IMAP arguments, POP3 matching,
and the compact UID store (pure, no server)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail import params, settle
from airflow_provider_mail.mail.search import (
    Literal,
    SearchCriteria,
    headers_match,
    imap_date,
    imap_search,
    pop3_matches,
)
from airflow_provider_mail.mail.uid_ranges import (
    UidRanges,
    handed_over,
    with_handed_over,
    without_handed_over,
)


@pytest.mark.parametrize("value", ["mark_seen", "leave_unread", "delete"])
def test_after_receive_values(value: str) -> None:
    assert params.check_after_receive(value, None) == (value, None)


def test_move_needs_move_to_and_only_move_takes_it() -> None:
    assert params.check_after_receive("move", " Processed ") == ("move", "Processed")
    with pytest.raises(MailConfigError, match="after_receive='move' needs move_to"):
        params.check_after_receive("move", None)
    with pytest.raises(MailConfigError, match="move_to is set but after_receive is 'delete'"):
        params.check_after_receive("delete", "Processed")
    with pytest.raises(MailConfigError, match="after_receive is 'seen'; use one of"):
        params.check_after_receive("seen", None)
    with pytest.raises(MailConfigError, match="move_to must be a folder name"):
        params.check_after_receive("move", 3)
    with pytest.raises(MailConfigError, match="the folder being read"):
        params.check_move_target(None, "inbox")
    params.check_move_target("INBOX", "Processed")


def test_pop3_refuses_what_it_cannot_do() -> None:
    params.check_for_protocol("pop3", "delete", params.check_search({"from": "a"}))
    with pytest.raises(MailConfigError, match="'move' needs IMAP folders"):
        params.check_for_protocol("pop3", "move", None)
    with pytest.raises(MailConfigError, match="'body' and 'text' need the message body"):
        params.check_for_protocol("pop3", "mark_seen", params.check_search({"text": "x"}))
    with pytest.raises(MailConfigError, match="'flagged' needs IMAP flags"):
        params.check_for_protocol("pop3", "mark_seen", params.check_search({"flagged": True}))
    params.check_for_protocol("imap", "move", params.check_search({"body": "x"}))


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ("from:a", "search must be a dict"),
        ({}, "search is an empty dict"),
        ({"sender": "a"}, "unknown key 'sender'"),
        ({"from": 3}, r"search\['from'\] must be text"),
        ({"subject": ""}, "is empty, which matches every message"),
        ({"since": "yesterday"}, "search 'since' must be a date"),
        ({"since": "2026-02-01", "before": "2026-02-01"}, "'before' .* is not after 'since'"),
        ({"larger": -1}, "search 'larger' must be a whole number"),
        ({"smaller": True}, "search 'smaller' must be a whole number"),
        ({"flagged": "yes"}, "search 'flagged' must be True or False"),
        ({"header": "X-A: b"}, "search 'header' must be a dict"),
        ({"header": {"X A": "b"}}, "a header name is printable ASCII"),
        ({"header": {"X-A:": "b"}}, "a header name is printable ASCII"),
        ({"to": "a\x00b"}, "NUL"),
    ],
)
def test_search_is_checked_when_the_task_is_built(search: object, message: str) -> None:
    with pytest.raises(MailConfigError, match=message):
        params.check_search(search)


def test_search_criteria_and_their_payload_round_trip() -> None:
    criteria = params.check_search(
        {
            "from": "billing@vendor.example",
            "since": datetime(2026, 1, 2, 13, 0),
            "before": "2026-02-01",
            "larger": 10,
            "header": {"X-Priority": "1"},
            "flagged": False,
        }
    )
    assert criteria == SearchCriteria(
        texts=(("from", "billing@vendor.example"),),
        since=date(2026, 1, 2),
        before=date(2026, 2, 1),
        larger=10,
        headers=(("X-Priority", "1"),),
        flagged=False,
    )
    assert params.check_search(criteria.to_payload()) == criteria


def test_imap_arguments_keep_every_value_data() -> None:
    criteria = params.check_search(
        {"from": 'a" OR ALL "\\', "subject": "für", "since": "2026-02-03", "smaller": 5}
    )
    command = imap_search(criteria, unseen_only=True, exclude="1:500,502")
    assert command.charset == "UTF-8"
    assert command.arguments == (
        b"UNSEEN",
        b"FROM",
        b'"a\\" OR ALL \\"\\\\"',
        b"SUBJECT",
        Literal("für".encode()),
        b"SENTSINCE",
        b"3-Feb-2026",
        b"SMALLER",
        b"5",
        b"NOT",
        b"UID",
        b"1:500,502",
    )
    assert command.arguments_with_charset()[:2] == [b"CHARSET", b"UTF-8"]
    crlf = imap_search(params.check_search({"to": "x\r\nA1 LOGOUT"}), unseen_only=False)
    assert crlf.arguments == (b"TO", Literal(b"x\r\nA1 LOGOUT"))
    assert imap_search(None, unseen_only=False).arguments == (b"ALL",)
    assert imap_date(date(2026, 12, 1)) == b"1-Dec-2026"


HEADERS = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <billing@vendor.example>\r\n"
    b"Subject: Invoice 42\r\nX-Priority: 1\r\n"
    b"Date: Tue, 01 Dec 2026 23:30:00 -0800\r\n\r\n"
)


@pytest.mark.parametrize(
    ("search", "matches"),
    [
        ({"from": "jürgen"}, True),
        ({"from": "VENDOR"}, True),
        ({"to": "anyone"}, False),  # no To header at all
        ({"subject": "invoice 4"}, True),
        ({"header": {"x-priority": "1"}}, True),
        ({"header": {"X-Priority": "2"}}, False),
        ({"since": "2026-12-01"}, True),  # the day as written, zone disregarded
        ({"since": "2026-12-02"}, False),
        ({"before": "2026-12-01"}, False),
        ({"before": "2026-12-02"}, True),
    ],
)
def test_pop3_header_matching(search: dict[str, object], matches: bool) -> None:
    assert headers_match(params.check_search(search), HEADERS) is matches


def test_pop3_reads_sizes_once_and_headers_only_while_needed() -> None:
    asked: list[str] = []

    def sizes() -> dict[int, int]:
        asked.append("LIST")
        return {1: 100, 2: 5000, 3: 6000, 4: 7000}

    def top(number: int) -> bytes:
        asked.append(f"TOP {number}")
        return HEADERS if number != 3 else b"Subject: other\r\n\r\n"

    picked = pop3_matches(
        [(4, "d"), (1, "a"), (2, "b"), (3, "c")],
        params.check_search({"subject": "invoice", "larger": 1000}),
        1,
        sizes=sizes,
        top=top,
    )
    assert picked == [(2, "b")]
    assert asked == ["LIST", "TOP 2"]
    assert pop3_matches([(2, "b"), (1, "a")], None, -1, sizes=sizes, top=top) == [
        (1, "a"),
        (2, "b"),
    ]


def test_uid_ranges_are_compact() -> None:
    ranges = UidRanges()
    for first in range(1, 100_001, 250):  # 100,000 messages handed over in 400 polls
        ranges = ranges.add(range(first, first + 250))
    assert ranges.to_text() == "1:100000"
    assert len(ranges) == 100_000
    ranges = ranges.add([100_002, 7])
    assert ranges.to_text() == "1:100000,100002"
    assert 100_001 not in ranges and 100_002 in ranges and 0 not in ranges
    assert UidRanges.parse(ranges.to_text()) == ranges
    assert ranges.without_present([5, 100_001, 100_003]) == [100_001, 100_003]
    random = __import__("random").Random(1)
    scattered = UidRanges.of(sorted(random.sample(range(1, 400_000), 100_000)))
    stored = scattered.to_stored()  # a search matched one message in four, at random
    assert stored.startswith("z:") and len(stored) < 80_000
    assert UidRanges.from_stored(stored) == scattered
    assert UidRanges.from_stored(ranges.to_stored()) == ranges
    with pytest.raises(ValueError):
        UidRanges.parse("5:3")
    assert UidRanges.parse("1:10,20").remove([1, 5, 6, 10, 20, 30]).to_text() == "2:4,7:9"


def test_handed_over_is_per_uidvalidity() -> None:
    value = with_handed_over(None, 7, [1, 2, 3])
    value = with_handed_over(value, 7, [4, 9])
    assert value == {"uidvalidity": 7, "uids": "1:4,9"}
    assert 9 in handed_over(value, 7)
    assert len(handed_over(value, 8)) == 0  # the folder was recreated: other messages
    assert with_handed_over(value, 8, [1]) == {"uidvalidity": 8, "uids": "1"}
    assert without_handed_over(value, 7, [2, 9]) == {"uidvalidity": 7, "uids": "1,3:4"}


def test_settling_acts_only_for_successful_task_instances() -> None:
    move = {"after_receive": "move", "move_to": "Processed", "uids": [1, 2]}
    entries = {
        "run_ok#-1": move,
        "run_failed#-1": {**move, "uids": [3]},
        "run_running#-1": {**move, "uids": [4]},
        "run_deleted#-1": {**move, "uids": [5]},
        "run_mapped#2": {**move, "after_receive": "delete", "uids": [6]},
        "run_done#-1": {**move, "settled": True},
        "run_seen#-1": {**move, "after_receive": "mark_seen"},
        "run_empty#-1": {**move, "uids": []},
        "mine#-1": move,
    }
    owed = settle.unsettled(entries, "mine#-1")
    assert sorted(owed) == [
        "run_deleted#-1",
        "run_failed#-1",
        "run_mapped#2",
        "run_ok#-1",
        "run_running#-1",
    ]
    states = {
        "run_ok": {"receive": "success"},
        "run_failed": {"receive": "failed"},
        "run_running": {"receive": "up_for_retry"},
        "run_mapped": {"receive_2": "success"},
    }
    decided = {s.entry: s.act for s in settle.plan(owed, "receive", states)}
    assert decided == {"run_ok#-1": True, "run_failed#-1": False, "run_mapped#2": True}
    assert settle.split_entry("scheduled__2026-12-01T00:00:00+00:00#-1") == (
        "scheduled__2026-12-01T00:00:00+00:00",
        -1,
    )
