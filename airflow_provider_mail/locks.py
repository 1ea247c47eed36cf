"""Host-wide locks: one claim or one read-modify-write at a time per mailbox or key.

A triggerer runs every trigger's poll in a thread of one process; workers run sensors in
processes of their own. When several of them take messages from one mailbox, or update
one Airflow Variable, at the same moment, the server or the Variable API alone cannot
always tell who came first (see docs/handover.md). An exclusive ``flock`` on a small
file serialises them across every thread and process of the host; the kernel releases
it when its holder dies, so a crash (even ``kill -9``) never leaves a stale lock.

The lock files live in ``$AIRFLOW_PROVIDER_MAIL_LOCK_DIR``, by default
``<temp dir>/airflow-provider-mail-locks-<uid>``: Airflow's components must share it (they
do when they run as one user on one host). They hold no data and may be deleted any time
no poll is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator

from airflow_provider_mail.exceptions import MailConfigError

LOCK_DIR_VARIABLE = "AIRFLOW_PROVIDER_MAIL_LOCK_DIR"


def lock_dir() -> str:
    """Where this host's lock files are (created on first use, private to this user)."""
    path = os.environ.get(LOCK_DIR_VARIABLE) or os.path.join(
        tempfile.gettempdir(), f"airflow-provider-mail-locks-{os.getuid()}"
    )
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        owner = os.stat(path).st_uid
    except OSError as err:
        raise _unusable(path, err) from err
    if owner != os.getuid():
        # Someone else's directory could hold (or never release) our locks.
        raise MailConfigError(
            f"The lock directory {path} belongs to another user; remove it or point "
            f"{LOCK_DIR_VARIABLE} at a directory of the user Airflow runs as."
        )
    return path


@contextlib.contextmanager
def host_lock(*names: str) -> Iterator[None]:
    """Hold the host-wide lock named by ``names`` (blocks until it is free).

    Held only around one claim or one Variable update, i.e. a few round trips to the
    server or the API, so waiting is short::

        with host_lock("imap-claim", "info@mail.example.com:993", "INBOX"):
            ...  # only one thread of this host is here for that mailbox
    """
    digest = hashlib.sha256("\0".join(names).encode()).hexdigest()[:32]
    directory = lock_dir()
    try:
        descriptor = os.open(
            os.path.join(directory, f"{digest}.lock"), os.O_RDWR | os.O_CREAT, 0o600
        )
    except OSError as err:
        raise _unusable(directory, err) from err
    try:
        # Each open() is its own lock owner, so threads of one process exclude each other too.
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _unusable(path: str, err: OSError) -> MailConfigError:
    return MailConfigError(
        f"The lock directory {path} cannot be used ({err.strerror or err}); point "
        f"{LOCK_DIR_VARIABLE} at a directory the user Airflow runs as can write."
    )
