"""ImapHook: one authenticated IMAP session (imapclient)."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import time
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from airflow_provider_mail.exceptions import MailError, MailProtocolError
from airflow_provider_mail.handover.mailbox import Exclude
from airflow_provider_mail.hooks.base import ReceiveHook
from airflow_provider_mail.hooks.mailbox_actions import uid_search
from airflow_provider_mail.hooks.oauth2 import TokenRefused
from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.imap_fetch import read_fetch
from airflow_provider_mail.mail.oauth2 import error_reply
from airflow_provider_mail.mail.search import SearchCriteria, imap_search
from airflow_provider_mail.mail.settings import ServerSettings
from airflow_provider_mail.mail.state import Claim, folder_name, oldest_first
from airflow_provider_mail.mail.tls import Security
from airflow_provider_mail.mail.uid_ranges import UidRanges, sequence_sets

if TYPE_CHECKING:
    from airflow_provider_mail.handover.imap import ImapMailbox

#: Most bytes of one message read by one FETCH. A larger message arrives in slices, so the
#: client libraries, which need a few times the size of what they read, never see more
#: than one slice of it at a time.
FETCH_SLICE = 16 * 1024 * 1024

# Messages per UID FETCH: one round trip for a normal poll. A larger claim first asks
# the sizes (one round trip) and fetches in chunks of about FETCH_CHUNK_BYTES, so memory
# stays bounded while a backlog of thousands of small messages takes a few round trips,
# not one per FETCH_CHUNK messages.
FETCH_CHUNK = 200
FETCH_CHUNK_BYTES = 8 * 2**20
FETCH_CHUNK_MAX = 5000

#: Most bytes a server may announce for one literal: a FETCH asks for at most
#: :data:`FETCH_SLICE` bytes of a message, so anything much larger is a broken or hostile
#: server, and the client library would reserve the announced size before reading it.
MAX_LITERAL = FETCH_SLICE + 1024 * 1024


#: Longest UID set of handed-over messages sent as ``NOT UID <set>`` in a search; a longer
#: (scattered) set is filtered here instead, keeping the command far below server limits
#: (Dovecot: 64 KiB per line).
MAX_EXCLUDED_TEXT = 8192


class ImapHook(ReceiveHook[IMAPClient]):
    """Receive email over IMAP (connection type ``mail_imap``).

    :param conn_id: a ``mail_imap`` connection, default ``mail_imap_default``.
    :param connection: an already loaded connection (triggers load it asynchronously).
    """

    conn_type = "mail_imap"
    default_conn_name = "mail_imap_default"
    hook_name = "Receive Email (IMAP)"
    protocol = "imap"
    probe_description = "selected the inbox"
    fetch_slice = FETCH_SLICE
    _selected: tuple[tuple[int, str], int] | None = None

    login_refused = (LoginError,)

    def _connect(self, settings: ServerSettings, context: ssl.SSLContext) -> IMAPClient:
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security is Security.SSL,
            ssl_context=context,
            timeout=settings.timeout,
        )
        _bound_literals(client, settings, max(MAX_LITERAL, self.fetch_slice + 1024 * 1024))
        return client

    def _greet(self, client: IMAPClient) -> None:
        # imapclient writes a command and its CRLF separately; with Nagle on, the CRLF
        # waits for the server's delayed ACK, adding up to 40 ms to each SEARCH.
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _offers_starttls(self, client: IMAPClient) -> bool:
        return bool(client.has_capability("STARTTLS"))

    def _starttls(self, client: IMAPClient, context: ssl.SSLContext) -> None:
        client.starttls(context)

    def _sasl_mechanisms(self, client: IMAPClient, settings: ServerSettings) -> list[str]:
        names = [c.decode("ascii", "replace") for c in client.capabilities()]
        return [name[5:] for name in names if name.upper().startswith("AUTH=")]

    def _sasl_exchange(self, client: IMAPClient) -> Callable[[str, str], None]:
        return _exchange(client)

    def _login(self, client: IMAPClient, settings: ServerSettings) -> None:
        client.login(settings.login, settings.password)

    def _signed_in(self, client: IMAPClient) -> None:
        # SELECT makes imaplib forget the capabilities sent with the LOGIN reply;
        # caching them now saves a CAPABILITY round trip on the first SEARCH.
        client.capabilities()

    def _close(self, client: IMAPClient) -> None:
        self._selected = None
        try:
            client.logout()
        except Exception:
            client.shutdown()

    def _probe(self, client: IMAPClient) -> None:
        client.select_folder("INBOX", readonly=True)

    def _new_mailbox(self) -> ImapMailbox:
        from airflow_provider_mail.handover.imap import ImapMailbox

        return ImapMailbox(self)

    def find_new(
        self,
        folder: str | None,
        unseen_only: bool,
        max_emails: int,
        *,
        search: SearchCriteria | None = None,
        exclude: Exclude | None = None,
    ) -> Claim:
        """Search only (no message is read or changed): the oldest messages a poll takes.

        ``search``: only messages matching these criteria (one ``UID SEARCH``, every value
        passed as data, :mod:`~airflow_provider_mail.mail.search`); ``exclude``: UIDs not
        to find again, excluded on the server when their set is short and always here.
        """
        name = folder_name(folder)
        self.renew_if_due()
        with self.translate_errors():
            already_selected = self._is_selected(name)
            uidvalidity = self.uidvalidity(name)
            self._forget_untagged()
            if already_selected:
                # SEARCH runs on the mailbox as of the server's last sync and reports newer
                # mail only beside its answer: sync first, or new mail is found a poll late.
                self.client.noop()
            excluded = exclude(name, uidvalidity) if exclude is not None else UidRanges()
            if search is None and not excluded:
                uids = self.client.search("UNSEEN" if unseen_only else "ALL")
            else:
                ranges = excluded.to_text()
                command = imap_search(
                    search,
                    unseen_only=unseen_only,
                    exclude=ranges if len(ranges) <= MAX_EXCLUDED_TEXT else "",
                )
                uids = excluded.without_present(uid_search(self.client, command))
        return Claim("imap", name, uidvalidity, uids=tuple(oldest_first(uids, max_emails)))

    def fetch(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """Read the claimed messages with ``BODY.PEEK[]`` (flags unchanged), oldest first.

        Messages deleted since the claim are skipped. When the folder's UIDVALIDITY
        changed, the claim's UIDs name other messages, so nothing is returned.
        """
        with self.translate_errors():
            if not self._still_valid(claim):
                self.log.warning(
                    "UIDVALIDITY of %s changed since the poll; polling again.", claim.folder
                )
                return []
        records = []
        with contextlib.closing(self._fetched(self._fetch_chunks(claim.uids))) as fetched:
            for chunk, response in fetched:
                for uid in chunk:
                    # Popped, so each raw message can be freed once its record is built.
                    data = response.pop(uid, {})
                    raw = data.get(b"BODY[]<0>")
                    if raw is None:
                        continue
                    if self._incomplete(data):
                        raw = self._read_rest(uid, raw, int(data[b"RFC822.SIZE"]))
                    records.append(
                        self.build(raw, claim, attachments, uid=uid, uidvalidity=claim.uidvalidity)
                    )
        return records

    def _fetched(
        self, chunks: list[tuple[int, ...]]
    ) -> Generator[tuple[tuple[int, ...], dict[int, Any]], None, None]:
        """Each chunk with its ``UID FETCH`` answer; the next chunk is read meanwhile.

        While the caller builds the records of one chunk, a reader thread already fetches
        the next (waiting on the socket releases the GIL), so a backlog's records are built
        beside the wire instead of after it. The session is used by one thread at a time:
        the read ahead starts only when the caller will not need the session for this chunk
        (no message to complete with :meth:`_read_rest`), and closing this generator (the
        caller failed) leaves the executor's ``with``, which waits for a read in flight
        before the session is used again (to give the messages back). At most two chunks
        are held at once (``FETCH_CHUNK_BYTES`` each).
        """
        items = [b"RFC822.SIZE", b"BODY.PEEK[]<0.%d>" % self.fetch_slice]

        def read(chunk: tuple[int, ...]) -> dict[int, Any]:
            with self.translate_errors():
                return self.uid_fetch(chunk, items)

        if len(chunks) <= 1:  # one round trip: nothing to overlap
            for chunk in chunks:
                yield chunk, read(chunk)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="imap-read-ahead") as reader:
            pending: Future[dict[int, Any]] | None = reader.submit(read, chunks[0])
            for index, chunk in enumerate(chunks):
                response = pending.result() if pending is not None else read(chunk)
                pending = None
                ahead = chunks[index + 1] if index + 1 < len(chunks) else None
                if ahead is not None and not any(map(self._incomplete, response.values())):
                    pending = reader.submit(read, ahead)
                yield chunk, response

    def _incomplete(self, data: dict[bytes, Any]) -> bool:
        """Whether a FETCH answer holds only the first :attr:`fetch_slice` of its message."""
        raw = data.get(b"BODY[]<0>")
        return (
            raw is not None
            and len(raw) == self.fetch_slice
            and len(raw) < int(data.get(b"RFC822.SIZE") or 0)
        )

    def _fetch_chunks(self, uids: tuple[int, ...]) -> list[tuple[int, ...]]:
        """``uids`` in FETCH chunks: up to :data:`FETCH_CHUNK` messages at once, else by size."""
        if len(uids) <= FETCH_CHUNK:
            return [uids] if uids else []
        with self.translate_errors():
            sizes = self._uid_sizes(uids)
        chunks: list[tuple[int, ...]] = []
        chunk: list[int] = []
        total = 0
        for uid in uids:
            size = min(sizes.get(uid, 0), self.fetch_slice)
            if chunk and (total + size > FETCH_CHUNK_BYTES or len(chunk) >= FETCH_CHUNK_MAX):
                chunks.append(tuple(chunk))
                chunk, total = [], 0
            chunk.append(uid)
            total += size
        if chunk:
            chunks.append(tuple(chunk))
        return chunks

    def _uid_sizes(self, uids: tuple[int, ...]) -> dict[int, int]:
        """``RFC822.SIZE`` per UID."""
        answer = self.uid_fetch(uids, [b"RFC822.SIZE"])
        return {uid: int(data.get(b"RFC822.SIZE") or 0) for uid, data in answer.items()}

    def uid_fetch(self, uids: Iterable[int], items: list[bytes]) -> dict[int, Any]:
        """``UID FETCH`` of ``uids``, one command per short sequence set (:meth:`uid_fetch_set`).

        Answers are merged per message: news of a message of an earlier set that arrives
        with a later answer (its flags changed) adds to what was read, never replaces it.
        """
        response: dict[int, Any] = {}
        for uid_set in sequence_sets(uids):
            for uid, data in self.uid_fetch_set(uid_set, items).items():
                response.setdefault(uid, {}).update(data)
        return response

    def uid_fetch_set(self, uid_set: str, items: list[bytes]) -> dict[int, Any]:
        """One ``UID FETCH`` of a sequence set (``1:2000,2005``).

        imapclient's ``fetch()`` lists every UID, and a backlog's command would outgrow the
        server's line limit (Dovecot: 64 KiB); so the command goes through its imaplib
        connection with a set of at most ``MAX_SET_TEXT`` characters, and the answer is
        read as ``fetch()`` reads it (:func:`~airflow_provider_mail.mail.imap_fetch.read_fetch`;
        ``tests/test_imap_fetch_chunks.py`` fails if imapclient changes this).
        """
        wanted = "(" + " ".join(item.decode() for item in items) + ")"
        typ, data = imaplib_of(self.client).uid("FETCH", uid_set, wanted)
        if typ != "OK":
            raise MailProtocolError(
                f"{self.settings.address} refused to send {len(UidRanges.parse(uid_set))} "
                f"message(s) ({_reason(MailError(str(data)))}); check the server's log."
            )
        return read_fetch(data, self.client.normalise_times)

    def _read_rest(self, uid: int, first: bytes, size: int) -> bytes:
        """A message larger than :data:`FETCH_SLICE`, read slice after slice."""
        buffer = bytearray(first)
        del first
        while len(buffer) < size:
            offset = len(buffer)
            with self.translate_errors():
                part = self.client.fetch(
                    [uid], [b"BODY.PEEK[]<%d.%d>" % (offset, self.fetch_slice)]
                )
            piece = part.get(uid, {}).get(b"BODY[]<%d>" % offset)
            if not piece:
                break
            buffer += piece
        return bytes(buffer)

    def supports_idle(self) -> bool:
        """Whether the server advertises IDLE (RFC 2177)."""
        with self.translate_errors():
            return bool(self.client.has_capability("IDLE"))

    def wait_for_news(self, timeout: float) -> bool:
        """IDLE on the selected folder until the server reports a change, or ``timeout``.

        Call after :meth:`find_new` (IDLE needs a selected folder). Returns whether the
        server said anything (new mail, flags changed, expunges): a reason to poll now.
        """
        left = self.session_seconds_left()
        if left is not None:
            # Wake up when the access token is due: the next poll signs in afresh.
            timeout = min(timeout, left)
        client = self.client
        deadline = time.monotonic() + timeout
        news = False
        with self.translate_errors():
            client.idle()
            try:
                # Servers also send keep-alives ("OK Still here"); only mailbox changes count.
                while not news and (remaining := deadline - time.monotonic()) > 0:
                    news = _is_news(client.idle_check(timeout=remaining))
            finally:
                _text, more = client.idle_done()
        return news or _is_news(more)

    def _still_valid(self, claim: Claim) -> bool:
        """Select the claim's folder; whether its UIDs still name the claimed messages."""
        return self.uidvalidity(claim.folder) == claim.uidvalidity

    def _is_selected(self, folder: str) -> bool:
        return self._selected is not None and self._selected[0] == (id(self.client), folder)

    def _forget_untagged(self) -> None:
        """Drop the server's unsolicited EXISTS/RECENT/... replies.

        imaplib keeps every one of them; a session polling for months would grow forever.
        """
        responses = imaplib_of(self.client).untagged_responses
        for key in ("EXISTS", "RECENT", "FETCH", "EXPUNGE"):
            responses.pop(key, None)

    def uidvalidity(self, folder: str) -> int:
        """Select ``folder`` read-write once per session; returns its UIDVALIDITY.

        Within one session the server cannot change UIDVALIDITY under a selected folder
        without closing it, so a second select of the same folder is skipped.
        """
        if self._is_selected(folder) and self._selected is not None:
            return self._selected[1]
        client = self.client
        try:
            status = client.select_folder(folder)
        except imaplib.IMAP4.abort:
            raise  # the link broke: translate_errors says so
        except imaplib.IMAP4.error as err:
            raise MailProtocolError(
                f"Folder {folder!r} could not be opened on {self.settings.address}; check the "
                "folder name (leave it empty for the inbox)."
            ) from err
        uidvalidity = int(status[b"UIDVALIDITY"])
        self._selected = ((id(client), folder), uidvalidity)
        return uidvalidity


def imaplib_of(client: IMAPClient) -> Any:
    """The imaplib connection inside an IMAPClient session.

    imapclient offers no public way to send a command it does not know (``UID STORE``
    with ``UNCHANGEDSINCE``, a ``UID FETCH`` with a sequence set, ``AUTHENTICATE`` with a
    server error report) or to bound a literal before it is read; its private ``_imap``
    attribute is the only door. ``tests/unit/test_library_privates.py`` fails when
    imapclient or imaplib stop working the way this relies on.
    """
    return client._imap


def _exchange(client: IMAPClient) -> Callable[[str, str], None]:
    """``AUTHENTICATE mechanism`` with ``initial`` as the first response."""

    def exchange(mechanism: str, initial: str) -> None:
        replies = iter([initial])

        def respond(_challenge: bytes) -> str:
            # The first challenge asks for the credentials; a second one is the server's
            # error report, which the client acknowledges before the server says NO.
            return next(replies, error_reply(mechanism))

        try:
            imaplib_of(client).authenticate(mechanism, respond)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as err:
            raise TokenRefused(mechanism) from err

    return exchange


def _bound_literals(client: IMAPClient, settings: ServerSettings, limit: int) -> None:
    """Refuse a literal larger than ``limit`` before imaplib reserves memory for it.

    imaplib reads a literal ``{n}`` with one ``read(n)``, which allocates ``n`` bytes at
    once: a server announcing 10 GB would exhaust the worker. The session is shut down,
    since the rest of its stream is that literal.
    """
    imap = imaplib_of(client)
    read = imap.read

    def bounded_read(size: int) -> bytes:
        if size > limit:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise MailProtocolError(
                f"{settings.address} announced {size} bytes in one answer, more than the "
                f"{limit} this provider reads at once, so the session was closed; check the "
                "server (a message is read in slices, so no real message needs this)."
            )
        return bytes(read(size))

    imap.read = bounded_read


def _reason(err: Exception) -> str:
    """The server's words from an imapclient error, for a one-sentence message."""
    return str(err).strip() or type(err).__name__


_NEWS = {b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT"}


def _is_news(responses: list[Any]) -> bool:
    """Whether IDLE responses report a change of the mailbox (not a keep-alive)."""
    return any(len(response) > 1 and response[1] in _NEWS for response in responses)
