"""The IMAP side of the hand-over: taking, marking and giving back over an ImapHook session.

The hook keeps the session, the search, the read and IDLE; what makes a message one
poller's lives here: the conditional ``STORE`` under the claim locks, the pending keyword
of the AssetWatcher, the Message-ID lookups for recreated folders.
"""

from __future__ import annotations

from imapclient import SEEN

from airflow_provider_mail.exceptions import MailProtocolError
from airflow_provider_mail.handover.locks import (
    ClaimLock,
    HostClaimLock,
    ServerClaimLock,
    all_held,
)
from airflow_provider_mail.handover.mailbox import HookMailbox, Reserve
from airflow_provider_mail.hooks.imap import ImapHook, imaplib_of
from airflow_provider_mail.mail.settings import SERVER_LOCK
from airflow_provider_mail.mail.state import Claim, folder_name, mailbox_key
from airflow_provider_mail.mail.uid_ranges import UidRanges, sequence_sets

#: Keyword of messages a trigger took but has not yet seen emitted (AssetWatcher use).
PENDING = b"$AirflowMailPending"

#: Servers and folders already warned about in this process: the warning about a missing
#: CONDSTORE is worth reading once, not once per claim (hundreds of lines a day).
_WARNED_NO_CONDSTORE: set[tuple[str, str]] = set()


class ImapMailbox(HookMailbox[ImapHook]):
    """The :class:`~airflow_provider_mail.handover.mailbox.Mailbox` of an ImapHook."""

    protocol = "imap"

    def locks(self, folder: str) -> list[ClaimLock]:
        """The claim locks of ``folder``: the host's, and with Claim Lock ``server`` the
        server's."""
        settings = self.hook.settings
        locks: list[ClaimLock] = [
            HostClaimLock("imap-claim", settings.account, mailbox_key(folder))
        ]
        if settings.claim_lock == SERVER_LOCK:
            locks.append(ServerClaimLock(self.hook.client, settings))
        return locks

    def take(self, claim: Claim, *, reserve: Reserve | None = None, pending: bool = False) -> Claim:
        """Set ``\\Seen`` on the claimed messages still unseen, atomically against other
        pollers; returns the ones now owned.

        ``UNCHANGEDSINCE`` (CONDSTORE, RFC 7162) makes the server refuse a message another
        poller marked after this one looked. Takes run one at a time (:meth:`locks`),
        because a server may answer two ``STORE``s that race within one round trip as if
        both had succeeded. With ``pending``, ``$AirflowMailPending`` is set in the same
        command (:meth:`find_pending`). ``reserve`` sees the still unseen messages under
        the locks, before the ``STORE``.
        """
        if not claim.uids:
            return claim
        flags = [SEEN, PENDING] if pending else [SEEN]
        with self.hook.translate_errors():
            if not self._still_valid(claim):
                return Claim(claim.protocol, claim.folder, claim.uidvalidity)
            with all_held(self.locks(claim.folder)):
                owned = self._take(claim, flags, reserve)
        refused = len(claim) - len(owned)
        if refused:
            self.hook.log.info("%d message(s) were taken by another poller.", refused)
        return owned

    def _take(self, claim: Claim, flags: list[bytes], reserve: Reserve | None) -> Claim:
        """Under the claim locks: set ``flags`` on the claimed messages still unseen."""
        client = self.hook.client
        settings = self.hook.settings
        condstore = bool(client.has_capability("CONDSTORE"))
        if not condstore:
            key = (settings.address, claim.folder)
            if settings.claim_lock != SERVER_LOCK and key not in _WARNED_NO_CONDSTORE:
                _WARNED_NO_CONDSTORE.add(key)
                self.hook.log.warning(
                    "%s has no CONDSTORE: pollers of %s on other hosts could take the same "
                    "message; set the connection's Claim Lock to server if there are any.",
                    settings.address,
                    claim.folder,
                )
            client.noop()  # the session's view must show what the previous holder marked
        # One FETCH per short UID set. Each set's STORE is conditional on the highest
        # MODSEQ its own FETCH saw: a message another poller took after that FETCH has a
        # higher one and is refused (one limit for all sets could be a later set's, newer
        # than the other poller's mark on a message of an earlier set).
        items = [b"FLAGS", b"MODSEQ"] if condstore else [b"FLAGS"]
        looked: list[tuple[list[int], int]] = []  # per FETCH: its unseen UIDs, their MODSEQ
        for uid_set in sequence_sets(claim.uids):
            state = self.hook.uid_fetch_set(uid_set, items)
            fresh = [
                uid
                for uid in UidRanges.parse(uid_set)
                if uid in state and SEEN not in state[uid][b"FLAGS"]
            ]
            modseqs = (int(state[uid][b"MODSEQ"][0]) for uid in fresh) if condstore else ()
            looked.append((fresh, max(modseqs, default=0)))
        still_unseen = {uid for fresh, _ in looked for uid in fresh}
        unseen = tuple(uid for uid in claim.uids if uid in still_unseen)
        if unseen and reserve is not None:
            reserve(Claim(claim.protocol, claim.folder, claim.uidvalidity, unseen))
        refused: set[int] = set()
        for fresh, highest in looked:
            if fresh and condstore:
                refused |= self._store_unchanged_since(fresh, highest, flags)
            elif fresh:
                for uid_set in sequence_sets(fresh):
                    client.add_flags(uid_set, flags, silent=True)
        owned = tuple(uid for uid in unseen if uid not in refused)
        return Claim(claim.protocol, claim.folder, claim.uidvalidity, uids=owned)

    def _store_unchanged_since(self, uids: list[int], modseq: int, flags: list[bytes]) -> set[int]:
        """``UID STORE uids (UNCHANGEDSINCE modseq) +FLAGS.SILENT``; returns refused UIDs."""
        # imapclient has no UNCHANGEDSINCE modifier, so the command goes through its imaplib
        # connection (see imaplib_of); the server lists refused UIDs in [MODIFIED ...].
        imap = imaplib_of(self.hook.client)
        refused: set[int] = set()
        for uid_set in sequence_sets(uids):
            imap.untagged_responses.pop("MODIFIED", None)
            typ, data = imap.uid(
                "STORE",
                uid_set,
                f"(UNCHANGEDSINCE {modseq})",
                "+FLAGS.SILENT",
                "(" + " ".join(flag.decode() for flag in flags) + ")",
            )
            if typ != "OK":
                reason = b" ".join(d for d in data if isinstance(d, bytes))
                raise MailProtocolError(
                    f"{self.hook.settings.address} refused to mark messages seen "
                    f"({reason.decode(errors='replace')}); check that the account may change "
                    "flags."
                )
            modified = imap.untagged_responses.pop("MODIFIED", None) or []
            refused.update(uid for item in modified for uid in _uid_set(item))
        return refused

    def mark(self, claim: Claim) -> None:
        """Set ``\\Seen`` on the claimed messages: they have been handed over."""
        self._change_flags(claim, add=[SEEN])

    def give_back(self, claim: Claim) -> bool:
        """Clear ``\\Seen`` again after a failed hand-over; whether that worked.

        A claim whose UIDs name nothing any more (the folder was recreated) counts as given
        back: there is nothing left to give.
        """
        if claim.uids:
            try:
                if not self._still_valid(claim):
                    return True
                for uid_set in sequence_sets(claim.uids):
                    self.hook.client.remove_flags(uid_set, [SEEN], silent=True)
            except Exception as err:
                self.hook.log.warning("Could not give %d message(s) back (%s).", len(claim), err)
                return False
        return True

    def find_pending(self, folder: str | None) -> Claim:
        """Messages a trigger took but whose event may not have gone out."""
        name = folder_name(folder)
        with self.hook.translate_errors():
            uidvalidity = self.hook.uidvalidity(name)
            uids = self.hook.client.search(["KEYWORD", PENDING.decode()])
        return Claim("imap", name, uidvalidity, uids=tuple(sorted(uids)))

    def release_pending(self, claim: Claim) -> None:
        """The claim's event is out: clear ``$AirflowMailPending``."""
        self._change_flags(claim, remove=[PENDING])

    def message_ids(self, claim: Claim) -> dict[int, str]:
        """UID -> Message-ID of the claimed messages (one FETCH of that header only)."""
        if not claim.uids:
            return {}
        with self.hook.translate_errors():
            self.hook.uidvalidity(claim.folder)
            response = self.hook.uid_fetch(claim.uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        found = {}
        for uid, data in response.items():
            header = data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b"")
            _, _, value = header.decode("ascii", "replace").partition(":")
            if value.strip():
                found[uid] = " ".join(value.split())
        return found

    def uid_next(self, folder: str) -> int:
        """The UID the folder's next message will get."""
        with self.hook.translate_errors():
            status = self.hook.client.folder_status(folder, [b"UIDNEXT"])
        return int(status[b"UIDNEXT"])

    def _change_flags(
        self, claim: Claim, *, add: list[bytes] | None = None, remove: list[bytes] | None = None
    ) -> None:
        """``UID STORE +FLAGS.SILENT`` / ``-FLAGS.SILENT`` while the claim is still valid."""
        if not claim.uids:
            return
        with self.hook.translate_errors():
            if self._still_valid(claim):
                for uid_set in sequence_sets(claim.uids):
                    if add:
                        self.hook.client.add_flags(uid_set, add, silent=True)
                    if remove:
                        self.hook.client.remove_flags(uid_set, remove, silent=True)

    def _still_valid(self, claim: Claim) -> bool:
        """Select the claim's folder; whether its UIDs still name the claimed messages."""
        return bool(self.hook.uidvalidity(claim.folder) == claim.uidvalidity)


def _uid_set(text: bytes | str) -> list[int]:
    """UIDs of an IMAP sequence set such as ``7,9:11``."""
    raw = text.decode() if isinstance(text, bytes) else text
    uids: list[int] = []
    for part in raw.strip().split(","):
        first, _, last = part.partition(":")
        if first.isdigit():
            uids.extend(range(int(first), int(last or first) + 1))
    return uids
