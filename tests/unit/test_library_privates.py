"""The library internals the hooks rely on are still there and still used the same way.

Each test fails when a new imapclient, imaplib or poplib changes what a comment in the
hooks promises (``imaplib_of`` in hooks/imap.py, ``poplib._MAXLINE`` and ``_shortcmd``
in hooks/pop3.py), instead of the hooks failing on a user's mail.
"""

from __future__ import annotations

import imaplib
import poplib

from imapclient import IMAPClient

import airflow_provider_mail.hooks.pop3  # noqa: F401  (raises poplib's line limit)


def test_imapclient_keeps_its_imaplib_connection_in_imap() -> None:
    assert "_imap" in IMAPClient.__init__.__code__.co_names


def test_imaplib_offers_what_the_hooks_call_on_it() -> None:
    for name in ("uid", "authenticate", "shutdown", "read"):
        assert callable(getattr(imaplib.IMAP4, name))
    assert "untagged_responses" in imaplib.IMAP4.__init__.__code__.co_names


def test_imaplib_reads_literals_through_read() -> None:
    """Bounding ``read`` (hooks/imap.py ``_bound_literals``) bounds every literal."""
    assert "read" in imaplib.IMAP4._get_response.__code__.co_names


def test_poplib_reads_lines_against_its_maxline_global() -> None:
    assert "_MAXLINE" in poplib.POP3._getline.__code__.co_names
    assert poplib._MAXLINE == 1 << 24  # type: ignore[attr-defined]


def test_poplib_sends_one_line_commands_with_shortcmd() -> None:
    assert "_shortcmd" in poplib.POP3.noop.__code__.co_names


def test_imapclient_sends_a_sequence_set_text_as_it_is_when_flags_change_silently() -> None:
    """Claims go to ``add_flags``/``remove_flags`` as short sequence-set texts
    (``"1:3,7"``, mail/uid_ranges.py). imapclient 4 reads the answer of a non-silent
    change back by message id (``int("1:3,7")`` fails), so every such call is silent."""
    sent: list[tuple[object, ...]] = []
    client = IMAPClient.__new__(IMAPClient)
    client.use_uid = True
    client._command_and_check = lambda *args, **kwargs: sent.append(args) or []  # type: ignore[method-assign]
    assert client.add_flags("1:3,7", [b"\\Seen"], silent=True) is None
    assert client.remove_flags("1:3,7", [b"\\Seen"], silent=True) is None
    assert [args[:2] for args in sent] == [("store", b"1:3,7")] * 2
