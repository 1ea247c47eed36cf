"""The auto-acknowledge example's choice of whom to answer (pure, no servers)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags_examples"))

from support_auto_acknowledge import choose_whom_to_answer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
WEEK = timedelta(days=7)


def record(sender: str, **fields: Any) -> dict[str, Any]:
    base = {
        "from": sender,
        "reply_to": "",
        "subject": "Help",
        "message_id": "<m@x>",
        "references": [],
        "automatic": False,
    }
    return {**base, **fields}


def choose(
    records: list[dict[str, Any]], answered: dict[str, Any] | None = None, run: str = "r1"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return choose_whom_to_answer(records, "support@example.com", answered or {}, NOW, WEEK, run)


def test_one_reply_per_sender_and_period() -> None:
    replies, state = choose([record("Bob <bob@x.org>"), record("BOB@x.org", message_id="<n@x>")])
    assert [r["to"] for r in replies] == ["bob@x.org"]
    assert state == {"bob@x.org": {"at": NOW.isoformat(), "run_id": "r1"}}
    later, _ = choose([record("bob@x.org")], state, run="r2")
    assert later == []
    after_a_week = {"bob@x.org": {"at": (NOW - WEEK).isoformat(), "run_id": "r0"}}
    again, state = choose([record("bob@x.org")], after_a_week, run="r2")
    assert [r["to"] for r in again] == ["bob@x.org"]
    assert state["bob@x.org"]["run_id"] == "r2"


def test_a_retry_of_the_same_run_answers_what_its_first_try_chose() -> None:
    _replies, state = choose([record("bob@x.org")])
    replies, _ = choose([record("bob@x.org")], state, run="r1")
    assert [r["to"] for r in replies] == ["bob@x.org"]


def test_never_machines_nor_itself() -> None:
    replies, state = choose(
        [
            record("robot@x.org", automatic=True),
            record("Support <SUPPORT@example.com>"),
            record("alice@x.org", reply_to="support@example.com"),
            record("carol@x.org", subject="Out of Office: away"),
            record("not an address"),
        ]
    )
    assert replies == [] and state == {}


def test_odd_message_ids_never_reach_the_thread_headers() -> None:
    [reply], _ = choose(
        [record("bob@x.org", message_id="junk <a@x> more", references=["<r@x>", "bad"])]
    )
    assert reply["in_reply_to"] == "<a@x>"
    assert reply["references"] == "<r@x> <a@x>"
    [reply], _ = choose([record("dan@x.org", message_id=None, references=[])])
    assert (reply["in_reply_to"], reply["references"]) == ("", "")


def test_state_it_did_not_write_is_forgotten() -> None:
    replies, state = choose([record("bob@x.org")], {"bob@x.org": "garbage", "x": {"at": "no"}})
    assert [r["to"] for r in replies] == ["bob@x.org"]
    assert set(state) == {"bob@x.org"}
