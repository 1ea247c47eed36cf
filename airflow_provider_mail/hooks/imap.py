"""ImapHook: one authenticated IMAP session (imapclient)."""

from __future__ import annotations

import contextlib
import imaplib
import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from imapclient import SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import join_message_ids
from imapclient.response_parser import parse_fetch_response

from airflow_provider_mail.exceptions import MailError, MailProtocolError, MailStorageError
from airflow_provider_mail.hooks.base import ReceiveHook
from airflow_provider_mail.hooks.oauth2 import TokenRefused
from airflow_provider_mail.locks import host_lock
from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.errors import (
    login_rejected,
    password_not_ascii,
    starttls_not_offered,
)
from airflow_provider_mail.mail.oauth2 import error_reply
from airflow_provider_mail.mail.settings import SERVER_LOCK, ServerSettings
from airflow_provider_mail.mail.state import Claim, folder_name, mailbox_key, oldest_first
from airflow_provider_mail.mail.tls import Security, build_ssl_context
from airflow_provider_mail.storage import DeliveredMessageIds, VariableStore

#: Keyword of messages a trigger claimed but has not yet seen emitted (AssetWatcher use).
PENDING = b"$AirflowMailPending"

#: The folder whose existence is the cross-host claim lock (``claim_lock`` ``server``).
LOCK_FOLDER = "AirflowMailClaimLock"

#: How many connection timeouts a claim waits for the server lock before it gives up (a
#: stale lock is removed after one).
STALE_LOCKS_TOLERATED = 4

#: Servers and folders already warned about in this process: the warning about a missing
#: CONDSTORE is worth reading once, not once per claim (hundreds of lines a day).
_WARNED_NO_CONDSTORE: set[tuple[str, str]] = set()

#: How often a claim tries ``CREATE`` of the lock folder when it fails although no folder
#: is there (its holder released it in between) before that counts as a refusal.
CREATE_ATTEMPTS = 5

#: Lock folder name per account (its namespace does not change while a process runs).
_LOCK_FOLDERS: dict[str, str] = {}

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

    def _open(self, settings: ServerSettings) -> IMAPClient:
        context = build_ssl_context(settings.server_certificate)
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security is Security.SSL,
            ssl_context=context,
            timeout=settings.timeout,
        )
        _bound_literals(client, settings, max(MAX_LITERAL, self.fetch_slice + 1024 * 1024))
        try:
            # imapclient writes a command and its CRLF separately; with Nagle on, the CRLF
            # waits for the server's delayed ACK, adding up to 40 ms to each SEARCH.
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if settings.security is Security.STARTTLS:
                if not client.has_capability("STARTTLS"):
                    raise starttls_not_offered(settings)
                client.starttls(context)
            if settings.oauth2 is not None:
                self.sign_in_with_token(settings, _sasl_mechanisms(client), _exchange(client))
                client.capabilities()
            elif settings.login:
                try:
                    client.login(settings.login, settings.password)
                except LoginError as err:
                    raise login_rejected(settings) from err
                except UnicodeEncodeError:
                    raise password_not_ascii(settings) from None
                # SELECT makes imaplib forget the capabilities sent with the LOGIN reply;
                # caching them now saves a CAPABILITY round trip on the first SEARCH.
                client.capabilities()
        except BaseException:
            self._abandon(client)
            raise
        return client

    def _close(self, client: IMAPClient) -> None:
        self._selected = None
        try:
            client.logout()
        except Exception:
            client.shutdown()

    def _probe(self, client: IMAPClient) -> None:
        client.select_folder("INBOX", readonly=True)

    def find_new(self, folder: str | None, unseen_only: bool, max_emails: int) -> Claim:
        """Search only (no message is read or changed): the oldest messages a poll takes."""
        name = folder_name(folder)
        self.renew_if_due()
        with self.translate_errors():
            already_selected = self._is_selected(name)
            uidvalidity = self._select(name)
            self._forget_untagged()
            if already_selected:
                # SEARCH runs on the mailbox as of the server's last sync and reports newer
                # mail only beside its answer: sync first, or new mail is found a poll late.
                self.client.noop()
            uids = self.client.search("UNSEEN" if unseen_only else "ALL")
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
        for chunk in self._fetch_chunks(claim.uids):
            items = [b"RFC822.SIZE", b"BODY.PEEK[]<0.%d>" % self.fetch_slice]
            with self.translate_errors():
                response = self._uid_fetch(chunk, items)
            for uid in chunk:
                # Popped, so each raw message can be freed once its record is built.
                data = response.pop(uid, {})
                raw = data.get(b"BODY[]<0>")
                if raw is None:
                    continue
                if len(raw) < int(data.get(b"RFC822.SIZE") or 0) and len(raw) == self.fetch_slice:
                    raw = self._read_rest(uid, raw, int(data[b"RFC822.SIZE"]))
                records.append(
                    self.build(raw, claim, attachments, uid=uid, uidvalidity=claim.uidvalidity)
                )
        return records

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
        """``RFC822.SIZE`` per UID, read from the lines themselves.

        imapclient's parser takes as long for these few numbers as for the messages; a
        line it would read differently (a literal, another item) goes to that parser.
        """
        typ, data = self.client._imap.uid("FETCH", _sequence_set(uids), "(RFC822.SIZE)")
        if typ != "OK":
            return {}
        sizes: dict[int, int] = {}
        for line in data:
            uid = _UID_ITEM.search(line) if isinstance(line, bytes) else None
            size = _SIZE_ITEM.search(line) if isinstance(line, bytes) else None
            if uid is None or size is None or b"{" in line:
                parsed = parse_fetch_response(data, self.client.normalise_times, True)
                return {key: int(value.get(b"RFC822.SIZE") or 0) for key, value in parsed.items()}
            sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def _uid_fetch(self, uids: tuple[int, ...], items: list[bytes]) -> dict[int, Any]:
        """``UID FETCH`` of ``uids`` as one compact sequence set (``1:2000``).

        imapclient's ``fetch()`` lists every UID, and a backlog's command would outgrow the
        server's line limit (Dovecot: 64 KiB); so the command goes through its imaplib
        connection and the answer is parsed the way ``fetch()`` parses it
        (``tests/test_imap_fetch_chunks.py`` fails if imapclient changes this).
        """
        typ, data = self.client._imap.uid(
            "FETCH", _sequence_set(uids), "(" + " ".join(item.decode() for item in items) + ")"
        )
        if typ != "OK":
            raise MailProtocolError(
                f"{self.settings.address} refused to send messages of {len(uids)} UID(s) "
                f"({_reason(MailError(str(data)))}); check the server's log."
            )
        response: dict[int, Any] = parse_fetch_response(data, self.client.normalise_times, True)
        return response

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

    def claim(
        self,
        claim: Claim,
        *,
        pending: bool = False,
        before_take: Callable[[Claim], None] | None = None,
    ) -> Claim:
        """Take the claimed messages that are still unseen, atomically against other pollers.

        Sets ``\\Seen`` with ``UNCHANGEDSINCE`` (CONDSTORE, RFC 7162): a message another
        poller marked after this one looked is refused by the server and left to that
        poller. Claims run one at a time per mailbox on this host (:func:`host_lock`), and
        with the connection's ``claim_lock`` set to ``server`` one at a time across hosts
        (a lock folder on the server), because a server may answer two ``STORE``s that
        race within one round trip as if both had succeeded. Returns the messages this
        poller now owns. With ``pending``, the ``$AirflowMailPending`` keyword is set in
        the same command, so a trigger that dies before its event is out finds them again
        (:meth:`find_pending`). ``before_take`` sees the still unseen messages under the
        locks, before the ``STORE``.
        """
        if not claim.uids:
            return claim
        flags = [SEEN, PENDING] if pending else [SEEN]
        with self.translate_errors():
            if not self._still_valid(claim):
                return Claim(claim.protocol, claim.folder, claim.uidvalidity)
            mailbox = mailbox_key(claim.folder)
            with host_lock("imap-claim", self.settings.account, mailbox), self._server_lock():
                owned = self._take(claim, flags, before_take)
        refused = len(claim) - len(owned)
        if refused:
            self.log.info("%d message(s) were taken by another poller.", refused)
        return owned

    def _take(
        self, claim: Claim, flags: list[bytes], before_take: Callable[[Claim], None] | None
    ) -> Claim:
        """Under the claim locks: set ``flags`` on the claimed messages still unseen."""
        client = self.client
        condstore = bool(client.has_capability("CONDSTORE"))
        if not condstore:
            if self.settings.claim_lock != SERVER_LOCK and _first_time(
                _WARNED_NO_CONDSTORE, (self.settings.address, claim.folder)
            ):
                self.log.warning(
                    "%s has no CONDSTORE: pollers of %s on other hosts could take the same "
                    "message; set the connection's Claim Lock to server if there are any.",
                    self.settings.address,
                    claim.folder,
                )
            client.noop()  # the session's view must show what the previous holder marked
        state = client.fetch(list(claim.uids), [b"FLAGS", b"MODSEQ"] if condstore else [b"FLAGS"])
        unseen = [uid for uid in claim.uids if uid in state and SEEN not in state[uid][b"FLAGS"]]
        if unseen and before_take is not None:
            _record_before_take(
                before_take, Claim(claim.protocol, claim.folder, claim.uidvalidity, tuple(unseen))
            )
        refused: set[int] = set()
        if unseen and condstore:
            highest = max(int(state[uid][b"MODSEQ"][0]) for uid in unseen)
            refused = self._store_unchanged_since(unseen, highest, flags)
        elif unseen:
            client.add_flags(unseen, flags, silent=True)
        owned = tuple(uid for uid in unseen if uid not in refused)
        return Claim(claim.protocol, claim.folder, claim.uidvalidity, uids=owned)

    @contextlib.contextmanager
    def _server_lock(self) -> Iterator[None]:
        """With ``claim_lock`` ``server``: hold the account's lock folder on the server.

        ``CREATE`` of an existing folder fails on every server, so creating the lock folder
        is an atomic test-and-set that works across hosts; ``DELETE`` releases it. A holder
        that died leaves it behind: a folder whose UIDVALIDITY (new with every ``CREATE``)
        stays the same for longer than the connection's timeout, the longest any holder
        waits for one command, is deleted as stale.
        """
        if self.settings.claim_lock != SERVER_LOCK:
            yield
            return
        name = self._lock_folder_name()
        started = time.monotonic()
        seen_generation: tuple[int | None, float] = (None, started)
        while not self._create_lock_folder(name):
            now = time.monotonic()
            if now - started > STALE_LOCKS_TOLERATED * self.settings.timeout:
                raise MailProtocolError(
                    f"The claim lock folder {name!r} on {self.settings.address} stayed in place "
                    f"for {now - started:.0f} seconds and could not be removed; delete it by "
                    "hand, or set the connection's Claim Lock to host."
                )
            generation = self._lock_generation(name)
            if generation != seen_generation[0]:
                seen_generation = (generation, now)
            elif now - seen_generation[1] > self.settings.timeout:
                self.log.warning("Removing the stale claim lock %s of a poller that died.", name)
                self._remove_lock_folder(name)
                seen_generation = (None, now)
            time.sleep(random.uniform(0.005, 0.05))
        try:
            yield
        finally:
            with contextlib.suppress(IMAPClientError, OSError):
                self._remove_lock_folder(name)

    def _lock_folder_name(self) -> str:
        """``AirflowMailClaimLock`` inside the account's personal namespace."""
        account = self.settings.account
        if account not in _LOCK_FOLDERS:
            prefix = ""
            if self.client.has_capability("NAMESPACE"):
                personal = self.client.namespace().personal
                prefix = personal[0][0] if personal else ""
            _LOCK_FOLDERS[account] = f"{prefix}{LOCK_FOLDER}"
        return _LOCK_FOLDERS[account]

    def _create_lock_folder(self, name: str) -> bool:
        """Whether this session created the lock folder (and so holds the lock).

        ``CREATE`` fails when the folder exists; a holder may release it between that
        answer and the check, so a failure with no folder in place is tried again before
        it counts as a refusal (an account that may not create folders fails every time).
        """
        refusal: IMAPClientError | None = None
        for _attempt in range(CREATE_ATTEMPTS):
            try:
                self.client.create_folder(name)
            except IMAPClientError as err:
                if self.client.folder_exists(name):
                    return False
                refusal = err
                continue
            return True
        reason = _reason(refusal) if refusal else "no reason given"
        raise MailProtocolError(
            f"{self.settings.address} refused to create the claim lock folder {name!r} "
            f"({reason}); allow the account to create folders or set the connection's Claim "
            "Lock to host."
        ) from refusal

    def _remove_lock_folder(self, name: str) -> None:
        """Release the lock: delete the folder, or rename it away when the delete fails.

        Cyrus (``delete_mode: delayed``, its default) renames a deleted folder to
        ``DELETED.<name>.<seconds>``, so a second delete of one name within a second fails;
        the lock then stayed in place until it counted as stale. Renaming it to a unique
        name frees the lock's name at once, and that unique name deletes without collision.
        """
        try:
            self.client.delete_folder(name)
            return
        except IMAPClientError:
            released = f"{name}-released-{uuid.uuid4().hex[:12]}"
        try:
            self.client.rename_folder(name, released)
        except IMAPClientError:
            return  # gone already (a stale-lock sweep by another poller) or not ours to move
        with contextlib.suppress(IMAPClientError):
            self.client.delete_folder(released)

    def _lock_generation(self, name: str) -> int | None:
        """The lock folder's UIDVALIDITY, or ``None`` when it vanished meanwhile."""
        try:
            return int(self.client.folder_status(name, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
        except IMAPClientError:
            return None

    def _store_unchanged_since(self, uids: list[int], modseq: int, flags: list[bytes]) -> set[int]:
        """``UID STORE uids (UNCHANGEDSINCE modseq) +FLAGS.SILENT``; returns refused UIDs."""
        # imapclient has no UNCHANGEDSINCE modifier, so the command goes through its imaplib
        # connection; the server lists refused UIDs in a [MODIFIED ...] response code.
        imap = self.client._imap
        imap.untagged_responses.pop("MODIFIED", None)
        typ, data = imap.uid(
            "STORE",
            join_message_ids(uids).decode(),
            f"(UNCHANGEDSINCE {modseq})",
            "+FLAGS.SILENT",
            "(" + " ".join(flag.decode() for flag in flags) + ")",
        )
        if typ != "OK":
            raise MailProtocolError(
                f"{self.settings.address} refused to mark messages seen "
                f"({b' '.join(d for d in data if isinstance(d, bytes)).decode(errors='replace')})"
                "; check that the account may change flags."
            )
        modified = imap.untagged_responses.pop("MODIFIED", None) or []
        return {uid for item in modified for uid in _uid_set(item)}

    def find_pending(self, folder: str | None) -> Claim:
        """Messages a trigger claimed but whose event may not have gone out."""
        name = folder_name(folder)
        with self.translate_errors():
            uidvalidity = self._select(name)
            uids = self.client.search(["KEYWORD", PENDING.decode()])
        return Claim("imap", name, uidvalidity, uids=tuple(sorted(uids)))

    def release_pending(self, claim: Claim) -> None:
        """The claim's event is out: clear ``$AirflowMailPending``."""
        if not claim.uids:
            return
        with self.translate_errors():
            if self._still_valid(claim):
                self.client.remove_flags(list(claim.uids), [PENDING], silent=True)

    def uid_next(self, folder: str) -> int:
        """The UID the folder's next message will get."""
        with self.translate_errors():
            status = self.client.folder_status(folder, [b"UIDNEXT"])
        return int(status[b"UIDNEXT"])

    def unclaim(self, claim: Claim) -> bool:
        """Clear ``\\Seen`` again after a failed hand-over; whether that worked."""
        if claim.uids:
            try:
                if not self._still_valid(claim):
                    return True  # the folder was recreated: its UIDs name nothing to give back
                self.client.remove_flags(list(claim.uids), [SEEN], silent=True)
            except Exception as err:
                self.log.warning("Could not give %d message(s) back (%s).", len(claim), err)
                return False
        return True

    def message_ids(self, claim: Claim) -> dict[int, str]:
        """UID -> Message-ID of the claimed messages (one FETCH of that header only)."""
        if not claim.uids:
            return {}
        with self.translate_errors():
            self._select(claim.folder)
            response = self.client.fetch(
                list(claim.uids), [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
            )
        found = {}
        for uid, data in response.items():
            header = data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b"")
            _, _, value = header.decode("ascii", "replace").partition(":")
            if value.strip():
                found[uid] = " ".join(value.split())
        return found

    def delivered_ids(self, claim: Claim) -> DeliveredMessageIds:
        """The Message-IDs recently handed over from the claim's folder (a Variable)."""
        return DeliveredMessageIds(
            VariableStore(),
            conn_id=self.conn_id,
            account=self.settings.account,
            folder=claim.folder,
        )

    def without_repeats(self, claim: Claim, delivered: DeliveredMessageIds | None) -> Claim:
        """After a folder was recreated, drop (and keep seen) what was handed over before.

        A recreated folder (new UIDVALIDITY) gives its messages new UIDs and often loses
        their ``\\Seen`` flags; the Message-ID tells which were handed over already. Every
        hand-over path (the sensor, the hook's :meth:`receive`) checks the same way.
        """
        if delivered is None or not claim:
            return claim
        if delivered.folder_was_recreated(claim.uidvalidity):
            delivered.start_checking(claim.uidvalidity, self.uid_next(claim.folder))
        suspects = delivered.suspects(claim.uids)
        if not suspects:
            return claim
        known = set(delivered.message_ids)
        suspect_claim = Claim(claim.protocol, claim.folder, claim.uidvalidity, tuple(suspects))
        repeats = {uid for uid, mid in self.message_ids(suspect_claim).items() if mid in known}
        if repeats:
            self.log.warning(
                "%s was recreated (new UIDVALIDITY); %d message(s) were handed over before "
                "and are not delivered again.",
                claim.folder,
                len(repeats),
            )
        return Claim(
            claim.protocol,
            claim.folder,
            claim.uidvalidity,
            uids=tuple(uid for uid in claim.uids if uid not in repeats),
        )

    def mark_seen(self, claim: Claim) -> None:
        """Set ``\\Seen`` on the claimed messages: they have been handed over."""
        if not claim.uids:
            return
        with self.translate_errors():
            if self._still_valid(claim):
                self.client.add_flags(list(claim.uids), [SEEN], silent=True)

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
        return self._select(claim.folder) == claim.uidvalidity

    def _is_selected(self, folder: str) -> bool:
        return self._selected is not None and self._selected[0] == (id(self.client), folder)

    def _forget_untagged(self) -> None:
        """Drop the server's unsolicited EXISTS/RECENT/... replies.

        imaplib keeps every one of them; a session polling for months would grow forever.
        """
        responses = self.client._imap.untagged_responses
        for key in ("EXISTS", "RECENT", "FETCH", "EXPUNGE"):
            responses.pop(key, None)

    def _select(self, folder: str) -> int:
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


_UID_ITEM = re.compile(rb"\bUID (\d+)")
_SIZE_ITEM = re.compile(rb"\bRFC822\.SIZE (\d+)")


def _sequence_set(uids: tuple[int, ...]) -> str:
    """UIDs as a compact IMAP sequence set (``1:500,502``), so commands stay short."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    start = previous = ordered[0] if ordered else 0
    for uid in ordered[1:]:
        if uid != previous + 1:
            ranges.append(f"{start}:{previous}" if previous != start else str(start))
            start = uid
        previous = uid
    if ordered:
        ranges.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(ranges)


def _sasl_mechanisms(client: IMAPClient) -> list[str]:
    """The SASL mechanisms the server offers (``AUTH=...`` capabilities)."""
    names = [c.decode("ascii", "replace") for c in client.capabilities()]
    return [name[5:] for name in names if name.upper().startswith("AUTH=")]


def _exchange(client: IMAPClient) -> Callable[[str, str], None]:
    """``AUTHENTICATE mechanism`` with ``initial`` as the first response."""

    def exchange(mechanism: str, initial: str) -> None:
        replies = iter([initial])

        def respond(_challenge: bytes) -> str:
            # The first challenge asks for the credentials; a second one is the server's
            # error report, which the client acknowledges before the server says NO.
            return next(replies, error_reply(mechanism))

        try:
            client._imap.authenticate(mechanism, respond)
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
    imap = client._imap
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


def _first_time(seen: set[tuple[str, str]], key: tuple[str, str]) -> bool:
    """Whether ``key`` is new to ``seen`` (and remember it)."""
    if key in seen:
        return False
    seen.add(key)
    return True


def _uid_set(text: bytes | str) -> list[int]:
    """UIDs of an IMAP sequence set such as ``7,9:11``."""
    raw = text.decode() if isinstance(text, bytes) else text
    uids: list[int] = []
    for part in raw.strip().split(","):
        first, _, last = part.partition(":")
        if first.isdigit():
            uids.extend(range(int(first), int(last or first) + 1))
    return uids


def _record_before_take(before_take: Callable[[Claim], None], taking: Claim) -> None:
    """``before_take(taking)``; its failure is Airflow's storage's, not the mail server's."""
    try:
        before_take(taking)
    except MailError:
        raise
    except Exception as err:
        raise MailStorageError(
            f"The messages about to be taken from {taking.folder} could not be recorded in "
            f"Airflow's storage ({type(err).__name__}); nothing was taken. Check that the "
            "Airflow API server and its database are reachable."
        ) from err


def _reason(err: Exception) -> str:
    """The server's words from an imapclient error, for a one-sentence message."""
    return str(err).strip() or type(err).__name__


_NEWS = {b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT"}


def _is_news(responses: list[Any]) -> bool:
    """Whether IDLE responses report a change of the mailbox (not a keep-alive)."""
    return any(len(response) > 1 and response[1] in _NEWS for response in responses)
