"""Fault injection: kill this process with SIGKILL at a named point of a hand-over."""

from __future__ import annotations

import os
import signal
import traceback
from typing import Any

#: Points of a hand-over where a process can be killed: after the messages about to be
#: taken were reserved in the ledger but before the server marked them, before they are
#: read, after they are read, and after they are marked seen (with ``unseen_only`` taking
#: them marks them, before the read; otherwise the mark step does, after it). The hook's
#: mailbox (what the hand-over engine talks to) dies at these points.
HOOK_POINTS = ("after_reserve", "before_fetch", "after_fetch", "after_mark")


def die() -> None:
    """SIGKILL this process: no clean-up, no finally, as an OOM kill would."""
    os.kill(os.getpid(), signal.SIGKILL)


def inject_crash(hook: Any, point: str | None) -> Any:
    """Make ``hook`` die at ``point`` (one of :data:`HOOK_POINTS`); ``None``: unchanged."""
    if point not in HOOK_POINTS:
        return hook
    mailbox = hook.mailbox
    take, read, mark = mailbox.take, mailbox.read, mailbox.mark

    def crashing_take(taking: Any, **kwargs: Any) -> Any:
        reserve = kwargs.get("reserve")
        if point == "after_reserve" and reserve is not None:

            def reserve_then_die(reserved: Any) -> None:
                reserve(reserved)
                die()

            kwargs["reserve"] = reserve_then_die
        owned = take(taking, **kwargs)
        if point == "after_mark" and owned:
            die()
        return owned

    def crashing_read(taken: Any, sink: Any) -> Any:
        if point == "before_fetch":
            die()
        records = read(taken, sink)
        if point == "after_fetch":
            die()
        return records

    def crashing_mark(taken: Any) -> None:
        mark(taken)
        if point == "after_mark":
            die()

    mailbox.take, mailbox.read, mailbox.mark = crashing_take, crashing_read, crashing_mark
    return hook


def run_forked(target: Any, *args: Any) -> int:
    """Run ``target(*args)`` in a forked child, as a worker runs a try; wait for it.

    Returns the child's exit status, or minus the signal that ended it (``-9`` for a
    SIGKILL). A child that raises prints its traceback and exits with 1.
    """
    pid = os.fork()
    if pid == 0:
        try:
            _reset_after_fork()
            target(*args)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _reset_after_fork() -> None:
    """Give the child its own copies of what the parent's threads own.

    The parent may have run triggers before (other tests): asgiref's one-thread executor,
    which ``aget_connection`` uses, then believes its worker thread exists, but a forked
    child has no such thread and would wait forever.
    """
    from concurrent.futures import ThreadPoolExecutor

    from airflow import settings
    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    settings.engine.dispose(close=False)  # never share the parent's DB connections
