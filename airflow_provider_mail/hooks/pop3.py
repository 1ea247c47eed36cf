"""Pop3Hook: one authenticated POP3 session (poplib)."""

from __future__ import annotations

import hashlib
import poplib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.handover.mailbox import Exclude
from airflow_provider_mail.handover.state import pop3_pending_key, pop3_seen_key
from airflow_provider_mail.hooks.base import ReceiveHook
from airflow_provider_mail.hooks.mailbox_actions import pop3_headers, pop3_sizes
from airflow_provider_mail.hooks.oauth2 import TokenRefused
from airflow_provider_mail.keyvalue import KeyValueStore, VariableStore
from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.oauth2 import b64, error_reply
from airflow_provider_mail.mail.search import SearchCriteria, pop3_matches
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.state import (
    INBOX,
    Claim,
    distinct_uidls,
    folder_name,
    is_inbox,
    new_pop3_messages,
)

if TYPE_CHECKING:
    from airflow_provider_mail.handover.pop3 import Pop3Mailbox

# poplib refuses lines over 2048 bytes, which real mail (long HTML lines) exceeds; RFC 5322
# allows 998 but servers relay longer ones, and losing such a message is worse. poplib has
# no public setting for it: ``_MAXLINE`` is a private module global that its line reader
# consults (tests/unit/test_library_privates.py fails if poplib stops doing so).
poplib._MAXLINE = 1 << 24  # type: ignore[attr-defined]


class Pop3Hook(ReceiveHook[poplib.POP3]):
    """Receive email over POP3 (connection type ``mail_pop3``).

    POP3 has no flags, so "seen" means "already handed over by this provider": the unique
    ids (UIDL) are remembered per connection and account in an Airflow Variable
    (``mail_provider/pop3_seen/<conn_id>/<login>@<host>:<port>``), which every worker and
    the triggerer see. Delete that Variable to receive every message again.

    Importing this module raises poplib's line-length limit for the whole process (from
    2048 bytes to 16 MiB): real mail has longer lines, and refusing them would lose mail.

    :param conn_id: a ``mail_pop3`` connection, default ``mail_pop3_default``.
    :param connection: an already loaded connection (triggers load it asynchronously).
    :param state_store: where the seen ids live; default Airflow Variables.
    """

    conn_type = "mail_pop3"
    default_conn_name = "mail_pop3_default"
    hook_name = "Receive Email (POP3)"
    protocol = "pop3"
    probe_description = "read the mailbox status (STAT)"
    session_sees_new_mail = False

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        connection: Any = None,
        state_store: KeyValueStore | None = None,
    ) -> None:
        super().__init__(conn_id, connection=connection)
        self.state_store: KeyValueStore = state_store or VariableStore()
        self._listing: list[tuple[int, str]] | None = None
        self.seen_before_listing: list[str] = []

    login_refused = (poplib.error_proto,)
    client_classes = (poplib.POP3, poplib.POP3_SSL)

    def _offers_starttls(self, client: poplib.POP3) -> bool:
        return "STLS" in _capabilities(client)

    def _starttls(self, client: poplib.POP3, context: ssl.SSLContext) -> None:
        client.stls(context)

    def _sasl_mechanisms(self, client: poplib.POP3, settings: ServerSettings) -> list[str]:
        return list(_capabilities(client).get("SASL", []))

    def _sasl_exchange(self, client: poplib.POP3) -> Callable[[str, str], None]:
        return _exchange(client)

    def _login(self, client: poplib.POP3, settings: ServerSettings) -> None:
        client.user(settings.login)
        client.pass_(settings.password)

    def _close(self, client: poplib.POP3) -> None:
        self._listing = None
        try:
            client.quit()
        except Exception:
            client.close()

    def _probe(self, client: poplib.POP3) -> None:
        client.stat()

    def _new_mailbox(self) -> Pop3Mailbox:
        from airflow_provider_mail.handover.pop3 import Pop3Mailbox

        return Pop3Mailbox(self)

    def check_folder(self, folder: str | None) -> None:
        if not is_inbox(folder):
            raise MailConfigError(
                f"POP3 has only the inbox, so folder {folder_name(folder)!r} cannot be read; "
                "leave folder empty or use a mail_imap connection."
            )

    @property
    def seen_key(self) -> str:
        """The Airflow Variable holding this account's handed-over UIDLs."""
        return pop3_seen_key(self.conn_id, self.settings.account)

    @property
    def pending_key(self) -> str:
        """The Airflow Variable of UIDLs an AssetWatcher trigger claimed before its event."""
        return pop3_pending_key(self.conn_id, self.settings.account)

    def seen(self) -> list[str]:
        """The UIDLs already handed over from this account."""
        return list(self.state_store.get(self.seen_key) or [])

    def find_new(
        self,
        folder: str | None,
        unseen_only: bool,
        max_emails: int,
        *,
        search: SearchCriteria | None = None,
        exclude: Exclude | None = None,
    ) -> Claim:
        """UIDL (no message is read): the oldest messages a poll takes.

        ``search``: header criteria are checked on ``TOP n 0`` and sizes on one ``LIST``,
        oldest first and only until ``max_emails`` matched; no body is read. ``exclude``
        names IMAP UIDs and does not apply: POP3 leaves out its seen ids (``unseen_only``).
        """
        self.check_folder(folder)
        self.renew_if_due()
        listed_now = self._listing is None
        listing = self.listing()
        seen: list[str] = []
        if unseen_only:
            # A fresh listing has just read the seen set; read it again only for a kept one.
            seen = self.seen_before_listing if listed_now else self.seen()
        picked = new_pop3_messages(
            listing, seen, unseen_only=unseen_only, max_emails=-1 if search else max_emails
        )
        if search is not None:
            with self.translate_errors():
                picked = pop3_matches(
                    picked,
                    search,
                    max_emails,
                    sizes=lambda: pop3_sizes(self.client),
                    top=lambda number: pop3_headers(self.client, number),
                )
        return Claim("pop3", INBOX, uidls=tuple(uidl for _number, uidl in picked))

    def fetch(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """RETR the claimed messages, oldest first; messages gone from the server are skipped."""
        numbers = {uidl: number for number, uidl in self.listing()}
        records = []
        for uidl in claim.uidls:
            number = numbers.get(uidl)
            if number is None:
                continue
            with self.translate_errors():
                _response, lines, _octets = self.client.retr(number)
            raw = b"\r\n".join(lines) + b"\r\n"
            records.append(self.build(raw, claim, attachments, uidl=uidl))
        return records

    def listing(self, seen_now: list[str] | None = None) -> list[tuple[int, str]]:
        """``(message number, UIDL)`` of every message, read once per session.

        ``seen_now``: the seen ids just read, so the first listing need not read them again.
        """
        if self._listing is None:
            # Read first: what was seen before the listing and is missing from it is gone.
            self.seen_before_listing = self.seen() if seen_now is None else list(seen_now)
            with self.translate_errors():
                _response, lines, _octets = self.client.uidl()
            listing = []
            for line in lines:
                number, _, uidl = line.decode("ascii", "replace").partition(" ")
                listing.append((int(number), uidl.strip()))
            distinct = distinct_uidls(listing, self._content_digest)
            if distinct != listing:
                self.log.warning(
                    "%s reported a unique id (UIDL) that is not unique; those messages are "
                    "told apart by a digest of their content.",
                    self.settings.address,
                )
            self._listing = distinct
        return self._listing

    def _content_digest(self, number: int) -> str:
        """A digest of message ``number`` (only for messages whose UIDL is not unique)."""
        with self.translate_errors():
            _response, lines, _octets = self.client.retr(number)
        return hashlib.sha256(b"\r\n".join(lines)).hexdigest()[:16]


def _exchange(client: poplib.POP3) -> Callable[[str, str], None]:
    """``AUTH mechanism`` (RFC 5034): the credentials answer the server's first ``+``.

    poplib has no ``AUTH`` command; its private ``_shortcmd`` (send one line, read one
    reply) is how its own commands are written (tests/unit/test_library_privates.py).
    """

    def exchange(mechanism: str, initial: str) -> None:
        try:
            client._shortcmd(f"AUTH {mechanism}")  # type: ignore[attr-defined]
            reply = client._shortcmd(b64(initial))  # type: ignore[attr-defined]
            if not reply.startswith(b"+OK"):
                # "+ <error report>": acknowledge it; the server then answers -ERR.
                client._shortcmd(b64(error_reply(mechanism)))  # type: ignore[attr-defined]
                raise TokenRefused(mechanism)
        except poplib.error_proto as err:
            raise TokenRefused(mechanism) from err

    return exchange


def _capabilities(client: poplib.POP3) -> dict[str, list[str]]:
    try:
        return client.capa()
    except poplib.error_proto:
        return {}
