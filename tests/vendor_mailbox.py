"""The mailbox the ``after_receive`` tests share: three invoices the search matches, one not.

The sensor's tests (``tests/test_after_receive_sensor.py``) and the AssetWatcher's
(``tests/test_asset_after_receive.py``) hand over the same messages and check the same
end state of INBOX and ``Processed`` per mode.
"""

from __future__ import annotations

from collections.abc import Mapping

from imapclient import SEEN

from devtools.dovecot import Dovecot
from tests.test_mailbox_actions import mail

VENDOR = [
    mail(
        f"Invoice {i}",
        sender="Billing <billing@vendor.example>",
        extra=f"Message-ID: <inv-{i}@vendor.example>\r\n",
    )
    for i in range(3)
]
OTHER = mail("Lunch?", extra="Message-ID: <lunch@example.com>\r\n")
INVOICES = [f"<inv-{i}@vendor.example>" for i in range(3)]
#: Message-ID -> flags of what no mode touches: the message the search does not match.
LUNCH: Mapping[str, set[bytes]] = {"<lunch@example.com>": set()}


def deliver_invoices(server: Dovecot) -> None:
    """Create ``Processed`` (``move``'s folder) and deliver the invoices with the other
    message between the first and the second."""
    with server.client("info") as client:
        client.create_folder("Processed")
        client.logout()
    server.deliver("info", [VENDOR[0], OTHER, VENDOR[1], VENDOR[2]])


def mailbox_state(server: Dovecot) -> dict[str, dict[str, set[bytes]]]:
    """Folder -> Message-ID -> flags."""
    state = {}
    with server.client("info") as client:
        for folder in ("INBOX", "Processed"):
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = (
                client.fetch(uids, [b"FLAGS", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                if uids
                else {}
            )
            state[folder] = {
                d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip(): set(
                    d[b"FLAGS"]
                )
                - {b"\\Recent"}
                for d in data.values()
            }
        client.logout()
    return state


def expected_state(
    mode: str, untouched: Mapping[str, set[bytes]] = LUNCH
) -> dict[str, dict[str, set[bytes]]]:
    """:func:`mailbox_state` once every invoice was handed over with ``after_receive=mode``."""
    if mode == "leave_unread":
        return {"INBOX": {**untouched, **{i: set() for i in INVOICES}}, "Processed": {}}
    if mode == "move":
        return {"INBOX": {**untouched}, "Processed": {i: {SEEN} for i in INVOICES}}
    return {"INBOX": {**untouched}, "Processed": {}}
