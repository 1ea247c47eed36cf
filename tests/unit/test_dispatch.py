"""Which waiting sensors a shared poll fires, and the leases that keep mail from starving."""

from __future__ import annotations

from airflow_provider_mail.mail.dispatch import Leases, dispatch, poll_limit, split
from airflow_provider_mail.mail.state import Claim


def imap(*uids: int, uidvalidity: int = 7) -> Claim:
    return Claim("imap", "INBOX", uidvalidity, uids=uids)


def pop3(*uidls: str) -> Claim:
    return Claim("pop3", "INBOX", uidls=uidls)


def test_one_message_fires_one_of_five_waiters() -> None:
    assert dispatch(imap(3), 5, Leases(), 0.0, takes=True, max_emails=5) == [imap(3)]


def test_n_messages_fire_one_waiter_per_share_of_max_emails() -> None:
    shares = dispatch(imap(1, 2, 3, 4, 5), 5, Leases(), 0.0, takes=True, max_emails=2)
    assert shares == [imap(1, 2), imap(3, 4), imap(5)]
    # never more than wait; the rest is for the next poll
    assert dispatch(imap(1, 2, 3), 2, Leases(), 0.0, takes=True, max_emails=1) == [
        imap(1),
        imap(2),
    ]
    # max_emails=-1: one waiter takes everything
    assert dispatch(imap(1, 2, 3), 4, Leases(), 0.0, takes=True, max_emails=-1) == [imap(1, 2, 3)]


def test_pop3_shares_split_the_uidls() -> None:
    assert split(pop3("a", "b", "c"), 2) == [pop3("a", "b"), pop3("c")]


def test_a_leased_message_fires_nobody_until_its_lease_runs_out() -> None:
    leases = Leases(seconds=60)
    assert dispatch(imap(3), 4, leases, 0.0, takes=True, max_emails=5) == [imap(3)]
    # later polls while the fired sensor's task starts: the others keep waiting
    assert dispatch(imap(3), 3, leases, 30.0, takes=True, max_emails=5) == []
    # new mail meanwhile goes to the next waiter, without the leased message
    assert dispatch(imap(3, 4), 3, leases, 31.0, takes=True, max_emails=5) == [imap(4)]
    # the task never took message 3 (its worker died): the next waiter gets it
    assert dispatch(imap(3, 4), 2, leases, 61.0, takes=True, max_emails=5) == [imap(3)]


def test_a_lease_is_dropped_once_a_complete_poll_no_longer_finds_the_message() -> None:
    leases = Leases(seconds=60)
    dispatch(imap(3, 4), 4, leases, 0.0, takes=True, max_emails=1)
    leases.seen(imap(4), 1.0, complete=True)  # message 3 was taken
    assert leases.free(imap(3, 4), 1.0) == imap(3)  # a message 3 back (given back) is free
    leases.seen(imap(), 2.0, complete=False)  # a truncated poll proves nothing
    assert leases.free(imap(4), 2.0) == imap()


def test_a_share_given_back_by_a_cancelled_waiter_is_free_again() -> None:
    leases = Leases(seconds=60)
    (share,) = dispatch(imap(3), 2, leases, 0.0, takes=True, max_emails=5)
    leases.release(share)
    assert dispatch(imap(3), 1, leases, 1.0, takes=True, max_emails=5) == [imap(3)]


def test_a_new_uidvalidity_makes_every_message_new() -> None:
    leases = Leases(seconds=60)
    dispatch(imap(3), 2, leases, 0.0, takes=True, max_emails=5)
    assert leases.free(imap(3, uidvalidity=8), 1.0) == imap(3, uidvalidity=8)


def test_polls_that_take_nothing_fire_every_waiter_with_everything() -> None:
    leases = Leases()
    assert dispatch(imap(1, 2), 3, leases, 0.0, takes=False, max_emails=1) == [imap(1, 2)] * 3
    assert not leases


def test_nothing_found_or_nobody_waiting_fires_nothing() -> None:
    assert dispatch(imap(), 5, Leases(), 0.0, takes=True, max_emails=5) == []
    assert dispatch(imap(1), 0, Leases(), 0.0, takes=True, max_emails=5) == []


def test_a_poll_looks_for_a_share_per_waiter_past_the_leased_messages() -> None:
    assert poll_limit(5, 4, 2, takes=True) == 22
    assert poll_limit(5, 0, 0, takes=True) == 5
    assert poll_limit(-1, 4, 2, takes=True) == -1
    assert poll_limit(5, 4, 2, takes=False) == 5


def test_expired_leases() -> None:
    leases = Leases(seconds=10)
    leases.lease(imap(1), 0.0)
    assert not leases.expired(5.0)
    assert leases.expired(10.0)
