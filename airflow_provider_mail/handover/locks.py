"""Claim locks: one take of a mailbox at a time (see docs/handover.md, "Claim locks").

A :class:`ClaimLock` is held around each take. Two implementations, used together:

* :class:`HostClaimLock` (always): an exclusive ``flock`` per account and folder
  (:func:`~airflow_provider_mail.locks.host_lock`), for every thread and process of the
  host; the kernel releases it when its holder dies. POP3's take holds the one of its
  seen Variable (``ImapMailbox.locks``, ``Pop3Mailbox.locks``).
* :class:`ServerClaimLock` (the IMAP connection's Claim Lock ``server``): the folder
  ``AirflowMailClaimLock`` on the mail server, for pollers on several hosts.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from airflow_provider_mail.exceptions import MailProtocolError
from airflow_provider_mail.locks import host_lock
from airflow_provider_mail.mail.settings import ServerSettings

log = logging.getLogger(__name__)

#: The folder whose existence is the cross-host claim lock (``claim_lock`` ``server``).
LOCK_FOLDER = "AirflowMailClaimLock"

#: How many connection timeouts a claim waits for the server lock before it gives up (a
#: stale lock is removed after one).
STALE_LOCKS_TOLERATED = 4

#: How often a claim tries ``CREATE`` of the lock folder when it fails although no folder
#: is there (its holder released it in between) before that counts as a refusal.
CREATE_ATTEMPTS = 5

#: Lock folder name per account (its namespace does not change while a process runs).
_LOCK_FOLDERS: dict[str, str] = {}


class ClaimLock(Protocol):
    """Held around one take; while it is held no other poller it covers takes."""

    def held(self) -> AbstractContextManager[None]:
        """Block until the lock is this poller's; release it on leaving."""


class HostClaimLock:
    """Every claim of one mailbox by any thread or process of this host, one at a time.

    :param names: what names the mailbox, e.g. ``("imap-claim", account, folder)``.
    """

    def __init__(self, *names: str) -> None:
        self.names = names

    def held(self) -> AbstractContextManager[None]:
        """The host-wide ``flock`` of :attr:`names`."""
        return host_lock(*self.names)


class ServerClaimLock:
    """Claims across hosts, one at a time: the folder :data:`LOCK_FOLDER` on the server.

    ``CREATE`` of an existing folder fails on every server, so creating the lock folder
    is an atomic test-and-set that works across hosts; ``DELETE`` releases it. A holder
    that died leaves it behind: a folder whose UIDVALIDITY (new with every ``CREATE``)
    stays the same for longer than the connection's timeout, the longest any holder
    waits for one command, is deleted as stale.
    """

    def __init__(self, client: IMAPClient, settings: ServerSettings) -> None:
        self.client = client
        self.settings = settings

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Create the lock folder (waiting for it while another poller holds it)."""
        name = self._folder_name()
        started = time.monotonic()
        seen_generation: tuple[int | None, float] = (None, started)
        while not self._create(name):
            now = time.monotonic()
            if now - started > STALE_LOCKS_TOLERATED * self.settings.timeout:
                raise MailProtocolError(
                    f"The claim lock folder {name!r} on {self.settings.address} stayed in place "
                    f"for {now - started:.0f} seconds and could not be removed; delete it by "
                    "hand, or set the connection's Claim Lock to host."
                )
            generation = self._generation(name)
            if generation != seen_generation[0]:
                seen_generation = (generation, now)
            elif now - seen_generation[1] > self.settings.timeout:
                log.warning("Removing the stale claim lock %s of a poller that died.", name)
                self._remove(name)
                seen_generation = (None, now)
            time.sleep(random.uniform(0.005, 0.05))
        try:
            yield
        finally:
            with contextlib.suppress(IMAPClientError, OSError):
                self._remove(name)

    def _folder_name(self) -> str:
        """:data:`LOCK_FOLDER` inside the account's personal namespace."""
        account = self.settings.account
        if account not in _LOCK_FOLDERS:
            prefix = ""
            if self.client.has_capability("NAMESPACE"):
                personal = self.client.namespace().personal
                prefix = personal[0][0] if personal else ""
            _LOCK_FOLDERS[account] = f"{prefix}{LOCK_FOLDER}"
        return _LOCK_FOLDERS[account]

    def _create(self, name: str) -> bool:
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
        reason = (str(refusal).strip() or type(refusal).__name__) if refusal else "no reason given"
        raise MailProtocolError(
            f"{self.settings.address} refused to create the claim lock folder {name!r} "
            f"({reason}); allow the account to create folders or set the connection's Claim "
            "Lock to host."
        ) from refusal

    def _remove(self, name: str) -> None:
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

    def _generation(self, name: str) -> int | None:
        """The lock folder's UIDVALIDITY, or ``None`` when it vanished meanwhile."""
        try:
            return int(self.client.folder_status(name, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
        except IMAPClientError:
            return None


@contextlib.contextmanager
def all_held(locks: list[ClaimLock]) -> Iterator[None]:
    """Hold every lock of ``locks``, in order (released in reverse)."""
    with ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock.held())
        yield
