"""Fault injection: kill this process with SIGKILL at a named point of a hand-over."""

from __future__ import annotations

import os
import signal
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
