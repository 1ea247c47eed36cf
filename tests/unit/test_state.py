"""Which messages a poll takes and what the POP3 seen set keeps: pure functions."""

from __future__ import annotations

from airflow_provider_mail.mail.state import new_pop3_messages, oldest_first, remember_seen


def test_oldest_first_takes_the_lowest_ids_and_minus_one_takes_all() -> None:
    assert oldest_first([9, 3, 7, 3, 5], 2) == [3, 5]
    assert oldest_first([9, 3, 7], -1) == [3, 7, 9]


def test_pop3_new_messages_skip_the_seen_ones_only_with_unseen_only() -> None:
    listing = [(1, "a"), (2, "b"), (3, "c")]
    assert new_pop3_messages(listing, ["a"], unseen_only=True, max_emails=5) == [(2, "b"), (3, "c")]
    assert new_pop3_messages(listing, ["a"], unseen_only=False, max_emails=2) == [
        (1, "a"),
        (2, "b"),
    ]


def test_seen_set_prunes_only_ids_known_before_the_listing_and_missing_from_it() -> None:
    # "old" was seen before this session listed the mailbox and is no longer on the
    # server; "late" arrived after the listing and another poller took it meanwhile.
    kept = remember_seen(
        seen=["old", "kept", "late"],
        handed_over=["mine"],
        present=["kept", "mine"],
        seen_before_listing=["old", "kept"],
    )
    assert kept == ["kept", "late", "mine"]


def test_seen_set_without_a_listing_snapshot_prunes_nothing() -> None:
    assert remember_seen(["x"], ["y"], present=[]) == ["x", "y"]
