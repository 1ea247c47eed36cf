"""``search`` and the ``after_receive`` actions against a real Dovecot, on the wire.

The search cases include the quoting attack: values that would end a quoted string,
close a parenthesis, start a literal or carry a CR/LF and a second command must stay
data. The actions touch exactly the UIDs they are given: a message another client
flagged ``\\Deleted`` survives both ``move`` and ``delete``.
"""

from __future__ import annotations

import poplib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from imapclient import DELETED, FLAGGED, SEEN, IMAPClient

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.hooks import mailbox_actions as actions
from airflow_provider_mail.mail.params import check_search
from airflow_provider_mail.mail.search import imap_search, pop3_matches
from devtools.certs import Certificate
from devtools.connections import USERS
from devtools.dovecot import Dovecot


def mail(
    subject: str,
    *,
    sender: str = "Ann <ann@example.com>",
    date_header: str = "Sun, 29 Nov 2026 10:00:00 +0100",
    body: str = "Hello.",
    extra: str = "",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: info@example.com\r\nSubject: {subject}\r\n"
        f"Date: {date_header}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def inbox(dovecot: Dovecot) -> Iterator[IMAPClient]:
    dovecot.clear("info")
    client = dovecot.client("info")
    client.select_folder("INBOX")
    yield client
    client.logout()
    dovecot.clear("info")


def search(client: IMAPClient, criteria: dict[str, object] | None, **kwargs: object) -> list[int]:
    client.noop()
    return actions.uid_search(
        client, imap_search(check_search(criteria), unseen_only=bool(kwargs.get("unseen_only")))
    )


def subjects(client: IMAPClient, uids: list[int]) -> list[str]:
    data = client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return sorted(
        data[uid][b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip()
        for uid in uids
    )


def test_each_criterion_is_one_server_side_search(dovecot: Dovecot, inbox: IMAPClient) -> None:
    dovecot.deliver(
        "info",
        [
            mail("Invoice 1", sender="Billing <billing@vendor.example>"),
            mail("Invoice 2", sender="Billing <billing@vendor.example>", body="x" * 5000),
            mail("Hello", date_header="Tue, 01 Dec 2026 23:30:00 -0800"),
            mail("Rechnung für Dezember", extra="X-Priority: 1\r\n"),
        ],
    )
    assert subjects(inbox, search(inbox, {"from": "VENDOR.example"})) == [
        "Invoice 1",
        "Invoice 2",
    ]
    assert subjects(inbox, search(inbox, {"from": "billing", "larger": 3000})) == ["Invoice 2"]
    assert subjects(inbox, search(inbox, {"smaller": 1000, "subject": "invoice"})) == ["Invoice 1"]
    # The day as written in the Date header (its zone disregarded), SENTSINCE/SENTBEFORE.
    assert subjects(inbox, search(inbox, {"since": "2026-12-01"})) == ["Hello"]
    assert subjects(inbox, search(inbox, {"before": date(2026, 12, 1)})) == [
        "Invoice 1",
        "Invoice 2",
        "Rechnung für Dezember",
    ]
    assert subjects(inbox, search(inbox, {"header": {"X-Priority": "1"}})) == [
        "Rechnung für Dezember"
    ]
    assert subjects(inbox, search(inbox, {"subject": "für"})) == ["Rechnung für Dezember"]
    assert subjects(inbox, search(inbox, {"body": "xxxxx"})) == ["Invoice 2"]
    first = search(inbox, {"subject": "Invoice 1"})
    inbox.add_flags(first, [FLAGGED])
    assert search(inbox, {"flagged": True}) == first
    assert len(search(inbox, {"flagged": False})) == 3
    inbox.add_flags(first, [SEEN])
    assert subjects(inbox, search(inbox, {"from": "billing"}, unseen_only=True)) == ["Invoice 2"]


@pytest.mark.parametrize(
    "value",
    [
        'x" OR ALL "',  # ends the quoted string
        "x) OR (ALL",  # closes a parenthesis
        "x\\",  # a trailing backslash would escape the closing quote
        "x{5}",  # looks like a literal
        "x\r\nA999 LOGOUT",  # a second command after CRLF
        "ALL",  # a search key as the value
        'ü" OR ALL "',  # non-ASCII: a literal with CHARSET UTF-8
    ],
)
def test_a_value_can_never_change_the_query(
    dovecot: Dovecot, inbox: IMAPClient, value: str
) -> None:
    dovecot.deliver("info", [mail("Harmless 1"), mail("Harmless 2")])
    # The value is data: no message has it in From, so nothing matches, and the session
    # is still usable (no LOGOUT was smuggled in, no syntax error, no literal left open).
    assert search(inbox, {"from": value}) == []
    assert search(inbox, {"header": {"Subject": value}}) == []
    assert len(search(inbox, None)) == 2
    if "\r\n" not in value:
        dovecot.deliver("info", [mail(f"Exactly {value}")])
        assert subjects(inbox, search(inbox, {"subject": f"Exactly {value}"})) == [
            f"Exactly {value}"
        ]


def test_pop3_applies_the_criteria_to_top_headers(dovecot: Dovecot) -> None:
    dovecot.clear("info")
    dovecot.deliver(
        "info",
        [
            mail("Invoice 1", sender="Billing <billing@vendor.example>"),
            mail("Note", body="invoice in the body only"),
            mail("Invoice 2", sender="Billing <billing@vendor.example>", body="y" * 4000),
            mail("=?utf-8?q?Rechnung_f=C3=BCr_Dezember?="),
        ],
    )
    client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    client.user("info")
    client.pass_(USERS["info"])
    try:
        listing = [(number, f"id{number}") for number in range(1, 5)]
        asked: list[int] = []

        def top(number: int) -> bytes:
            asked.append(number)
            return actions.pop3_headers(client, number)

        def run(criteria: dict[str, object], max_emails: int = -1) -> list[int]:
            picked = pop3_matches(
                listing,
                check_search(criteria),
                max_emails,
                sizes=lambda: actions.pop3_sizes(client),
                top=top,
            )
            return [number for number, _uidl in picked]

        assert run({"subject": "invoice"}) == [1, 3]  # not the body's "invoice"
        assert run({"subject": "für"}) == [4]  # RFC 2047 decoded
        asked.clear()
        assert run({"from": "billing", "larger": 2000}) == [3]
        assert asked == [3]  # LIST ruled out the others: no TOP for them
        asked.clear()
        assert run({"from": "billing"}, max_emails=1) == [1]
        assert asked == [1]  # stops once max_emails matched
    finally:
        client.quit()
        dovecot.clear("info")


def test_move_keeps_flags_adds_seen_and_spares_foreign_deleted(
    dovecot: Dovecot, inbox: IMAPClient
) -> None:
    inbox.create_folder("Processed")
    dovecot.deliver("info", [mail("Ours 1"), mail("Foreign"), mail("Ours 2")])
    inbox.noop()
    ours_1, foreign, ours_2 = inbox.search("ALL")
    inbox.add_flags([ours_1], [FLAGGED])
    inbox.add_flags([foreign], [DELETED])  # another client's, not yet expunged
    actions.require_folder(inbox, "Processed", "dovecot")
    actions.move(inbox, [ours_1, ours_2], "Processed", "dovecot")
    inbox.noop()
    assert inbox.search("ALL") == [foreign]
    assert DELETED in inbox.get_flags([foreign])[foreign]
    inbox.select_folder("Processed")
    moved = inbox.fetch(inbox.search("ALL"), [b"FLAGS", b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    flags = {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":")[1].strip(): set(data[b"FLAGS"])
        - {b"\\Recent"}
        for data in moved.values()
    }
    assert flags == {"Ours 1": {SEEN, FLAGGED}, "Ours 2": {SEEN}}
    inbox.select_folder("INBOX")
    actions.move(inbox, [ours_1, ours_2], "Processed", "dovecot")  # a repeat moves nothing
    inbox.select_folder("Processed")
    assert len(inbox.search("ALL")) == 2


def test_delete_expunges_exactly_those_uids(dovecot: Dovecot, inbox: IMAPClient) -> None:
    dovecot.deliver("info", [mail("Ours"), mail("Foreign"), mail("Kept")])
    inbox.noop()
    ours, foreign, kept = inbox.search("ALL")
    inbox.add_flags([foreign], [DELETED])
    actions.delete(inbox, [ours], "dovecot")
    inbox.noop()
    assert inbox.search("ALL") == [foreign, kept]
    actions.delete(inbox, [ours], "dovecot")  # a repeat deletes nothing
    inbox.noop()
    assert inbox.search("ALL") == [foreign, kept]


def test_a_missing_move_to_is_found_before_anything_is_touched(
    dovecot: Dovecot, inbox: IMAPClient
) -> None:
    with pytest.raises(MailConfigError, match="move_to 'Nowhere' does not exist"):
        actions.require_folder(inbox, "Nowhere", "dovecot")


#: Dovecot's capabilities without MOVE (the COPY fallback), and without MOVE and UIDPLUS.
WITHOUT_MOVE = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ "
    "UIDPLUS CONDSTORE NAMESPACE CHILDREN UNSELECT"
)
WITHOUT_UIDPLUS = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ "
    "CONDSTORE NAMESPACE CHILDREN UNSELECT"
)


@pytest.fixture(scope="module", params=["without_move", "without_uidplus"])
def limited_dovecot(
    request: pytest.FixtureRequest, workdir: Path, certificate: Certificate
) -> Iterator[Dovecot]:
    config = WITHOUT_MOVE if request.param == "without_move" else WITHOUT_UIDPLUS
    server = Dovecot(
        workdir / f"dovecot-{request.param}", certificate, users=dict(USERS), extra_config=config
    ).start()
    yield server
    server.stop()


def test_copy_fallback_or_a_clear_refusal(limited_dovecot: Dovecot) -> None:
    server = limited_dovecot
    server.clear("info")
    server.deliver("info", [mail("Ours"), mail("Foreign")])
    with server.client("info") as client:
        client.create_folder("Processed")
        client.select_folder("INBOX")
        ours, foreign = client.search("ALL")
        client.add_flags([foreign], [DELETED])
        if client.has_capability("UIDPLUS"):
            actions.move(client, [ours], "Processed", "dovecot")
            client.noop()
            assert client.search("ALL") == [foreign]
            client.select_folder("Processed")
            assert len(client.search("SEEN")) == 1
        else:
            for action in ("move", "delete"):
                with pytest.raises(MailConfigError, match="UIDPLUS"):
                    actions.require_capabilities(client, action, "dovecot")
            with pytest.raises(MailConfigError, match="neither MOVE nor UIDPLUS"):
                actions.move(client, [ours], "Processed", "dovecot")
            client.noop()
            assert client.search("ALL") == [ours, foreign]  # nothing touched
            assert SEEN not in client.get_flags([ours])[ours]
        client.logout()
    server.clear("info")


def test_pop3_delete_happens_at_quit(dovecot: Dovecot) -> None:
    dovecot.clear("info")
    dovecot.deliver("info", [mail("First"), mail("Second"), mail("Third")])

    def session() -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
        client.user("info")
        client.pass_(USERS["info"])
        return client

    dropped = session()
    actions.pop3_delete(dropped, [1], "dovecot")
    dropped.close()  # no QUIT: nothing is removed
    client = session()
    assert client.stat()[0] == 3
    actions.pop3_delete(client, [1, 3], "dovecot")
    client.quit()
    client = session()
    assert client.stat()[0] == 1
    client.quit()
    dovecot.clear("info")
