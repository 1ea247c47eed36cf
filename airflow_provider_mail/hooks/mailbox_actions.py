"""What ``after_receive`` and ``search`` do on the wire: IMAP search, move, delete; POP3 delete.

Thin I/O over an open session; the decisions (which arguments, which UIDs) are made by
the pure modules ``mail/search.py`` and ``mail/uid_ranges.py``. Every function works on
exactly the UIDs it is given: a message another client flagged ``\\Deleted`` is never
expunged by this provider (no plain ``EXPUNGE``, only ``UID EXPUNGE`` of our UIDs).
"""

from __future__ import annotations

import poplib
from collections.abc import Iterable

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import _literal
from imapclient.response_parser import parse_message_list

from airflow_provider_mail.exceptions import MailConfigError, MailProtocolError
from airflow_provider_mail.mail.search import Literal, SearchCommand
from airflow_provider_mail.mail.uid_ranges import sequence_sets


def uid_search(client: IMAPClient, command: SearchCommand) -> list[int]:
    """Run one ``UID SEARCH`` built by :func:`~.search.imap_search`; the UIDs it found.

    imapclient's own ``search()`` leaves a value without spaces or quotes unquoted (so a
    value ``x)`` or one holding CR/LF would reach the wire as syntax), so the arguments
    are sent through its ``_raw_command_untagged``: quoted strings as they are, and
    :class:`~.search.Literal` values as imapclient ``_literal`` objects, which it always
    sends as literals (``tests/test_mailbox_actions.py`` fails if imapclient changes).
    """
    arguments = [
        _literal(argument.data) if isinstance(argument, Literal) else argument
        for argument in command.arguments_with_charset()
    ]
    data = client._raw_command_untagged(b"SEARCH", arguments, uid=True)
    return sorted(parse_message_list(data))


def require_folder(client: IMAPClient, folder: str, address: str) -> None:
    """``move_to`` must exist before any message is touched."""
    try:
        exists = client.folder_exists(folder)
    except IMAPClientError as err:
        raise MailProtocolError(
            f"{address} could not list folders to check move_to {folder!r} ({err}); "
            "check the account's rights."
        ) from err
    if not exists:
        raise MailConfigError(
            f"move_to {folder!r} does not exist on {address}; create the folder or fix "
            "the name (nothing was moved)."
        )


def require_capabilities(client: IMAPClient, after_receive: str, address: str) -> None:
    """Refuse, before any message is touched, what the server cannot do exactly.

    ``move`` needs ``MOVE`` (RFC 6851) or ``UIDPLUS`` (RFC 4315, for ``UID EXPUNGE``);
    ``delete`` needs ``UIDPLUS``. A plain ``EXPUNGE`` would also remove every message
    another client had flagged ``\\Deleted``, so it is never used.
    """
    if after_receive == "move" and not (
        client.has_capability("MOVE") or client.has_capability("UIDPLUS")
    ):
        raise MailConfigError(
            f"{address} offers neither MOVE nor UIDPLUS, so messages cannot be moved without "
            "expunging other clients' deleted mail; use after_receive='mark_seen' or "
            "'leave_unread'."
        )
    if after_receive == "delete" and not client.has_capability("UIDPLUS"):
        raise MailConfigError(
            f"{address} does not offer UIDPLUS (UID EXPUNGE), so messages cannot be deleted "
            "without expunging other clients' deleted mail; use after_receive='mark_seen' "
            "or 'leave_unread'."
        )


def move(client: IMAPClient, uids: Iterable[int], target: str, address: str) -> None:
    """Move exactly ``uids`` of the selected folder to ``target``, with ``\\Seen`` added.

    ``UID MOVE`` where offered, else ``UID COPY`` + ``\\Deleted`` + ``UID EXPUNGE`` of
    those UIDs. Idempotent: UIDs no longer in the folder are simply not there to move.
    """
    uid_sets = list(sequence_sets(uids))  # short commands, however many UIDs
    if not uid_sets:
        return
    require_capabilities(client, "move", address)
    try:
        can_move = client.has_capability("MOVE")
        for uid_set in uid_sets:
            # The flags travel with the message: the copy arrives with its flags plus \Seen.
            client.add_flags(uid_set, [SEEN], silent=True)
            if can_move:
                client.move(uid_set, target)
            else:
                client.copy(uid_set, target)
                client.add_flags(uid_set, [DELETED], silent=True)
                client.uid_expunge(uid_set)
    except IMAPClientError as err:
        raise MailProtocolError(
            f"{address} refused to move messages to {target!r} ({err}); check that the "
            "folder exists and the account may write to it."
        ) from err


def delete(client: IMAPClient, uids: Iterable[int], address: str) -> None:
    """``\\Deleted`` + ``UID EXPUNGE`` of exactly ``uids`` of the selected folder."""
    uid_sets = list(sequence_sets(uids))
    if not uid_sets:
        return
    require_capabilities(client, "delete", address)
    try:
        for uid_set in uid_sets:
            client.add_flags(uid_set, [DELETED], silent=True)
            client.uid_expunge(uid_set)
    except IMAPClientError as err:
        raise MailProtocolError(
            f"{address} refused to delete messages ({err}); check that the account may delete mail."
        ) from err


def pop3_delete(client: poplib.POP3, numbers: Iterable[int], address: str) -> None:
    """``DELE`` each message number; the server removes them at ``QUIT`` (session close).

    A session that ends without ``QUIT`` (a crash, a dropped link) removes nothing.
    """
    for number in numbers:
        try:
            client.dele(number)
        except poplib.error_proto as err:
            raise MailProtocolError(
                f"{address} refused to delete message {number} ({err!s}); check that the "
                "account may delete mail."
            ) from err


def pop3_sizes(client: poplib.POP3) -> dict[int, int]:
    """``LIST``: the size in bytes of every message, by number."""
    _response, lines, _octets = client.list()
    sizes = {}
    for line in lines:
        number, _, size = line.decode("ascii", "replace").partition(" ")
        if number.isdigit() and size.strip().isdigit():
            sizes[int(number)] = int(size.strip())
    return sizes


def pop3_headers(client: poplib.POP3, number: int) -> bytes:
    """``TOP number 0``: the headers of one message, no body line."""
    _response, lines, _octets = client.top(number, 0)
    return b"\r\n".join(lines) + b"\r\n"
