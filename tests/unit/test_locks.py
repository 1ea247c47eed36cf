"""The host lock: exclusive across processes and threads, released when its holder dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.locks import LOCK_DIR_VARIABLE, host_lock

NOBODY_UID = 65534


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(tmp_path / "locks"))
    return tmp_path / "locks"


def _hold(names: tuple[str, ...], inside: Any, leave: Any, journal: str) -> None:
    with host_lock(*names):
        inside.set()
        leave.wait(30)
        with open(journal, "a") as out:
            out.write("child out\n")


def test_another_process_waits_until_the_holder_leaves(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    context = multiprocessing.get_context("fork")
    inside, leave = context.Event(), context.Event()
    child = context.Process(target=_hold, args=(("a", "INBOX"), inside, leave, str(journal)))
    child.start()
    assert inside.wait(30)
    threading.Timer(0.3, leave.set).start()
    with host_lock("a", "INBOX"), journal.open("a") as out:
        out.write("parent in\n")
    child.join(30)
    assert journal.read_text().splitlines() == ["child out", "parent in"]


def test_threads_of_one_process_exclude_each_other() -> None:
    inside, order = 0, []
    most_inside = 0
    lock = threading.Lock()

    def claim(number: int) -> None:
        nonlocal inside, most_inside
        with host_lock("a", "INBOX"):
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            order.append(number)
            threading.Event().wait(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most_inside == 1 and sorted(order) == list(range(8))


def test_other_mailboxes_do_not_wait() -> None:
    with host_lock("a", "INBOX"):
        acquired = threading.Event()
        other = threading.Thread(target=lambda: _enter(("a", "Archive"), acquired))
        other.start()
        assert acquired.wait(10), "a claim of another folder waited for this one"
        other.join(10)


def _enter(names: tuple[str, ...], acquired: threading.Event) -> None:
    with host_lock(*names):
        acquired.set()


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    inside, leave = context.Event(), context.Event()
    child = context.Process(target=_hold, args=(("a", "INBOX"), inside, leave, str(tmp_path / "j")))
    child.start()
    assert inside.wait(30)
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(30)
    acquired = threading.Event()
    waiter = threading.Thread(target=_enter, args=(("a", "INBOX"), acquired), daemon=True)
    waiter.start()
    assert acquired.wait(10), "the dead holder's lock was not released"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to hand the directory to nobody")
def test_a_lock_directory_of_another_user_is_refused(lock_dir: Path) -> None:
    lock_dir.mkdir()
    os.chown(lock_dir, NOBODY_UID, -1)
    with pytest.raises(MailConfigError, match="belongs to another user"), host_lock("a"):
        pass


def test_a_lock_directory_that_cannot_be_created_is_one_sentence(
    lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = lock_dir.parent / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(LOCK_DIR_VARIABLE, str(blocker / "locks"))
    with (
        pytest.raises(MailConfigError, match=r"cannot be used .*; point AIRFLOW_PROVIDER_MAIL_"),
        host_lock("a"),
    ):
        pass
