"""One demo run's lifetime: a temp dir, everything started in it, and a guaranteed clean-up."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


class DemoError(Exception):
    """A failure the demo explains in its message; no traceback is needed."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM / SIGHUP (a closed terminal, `kill`) take the same path as Ctrl-C, so the
    # finally blocks stop every server and child process.
    raise KeyboardInterrupt(signal.Signals(signum).name)


class DemoSession:
    """Context manager: ``callback()`` registers clean-ups, run in reverse order on exit.

    Clean-up runs on success, on error, on Ctrl-C and on SIGTERM; a second Ctrl-C while
    it runs is ignored so it cannot leave Dovecot or Airflow behind.
    """

    def __init__(self, keep: bool = False, prefix: str = "mail-provider-demo-") -> None:
        self.keep = keep
        self.started = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        # Dovecot's unprivileged processes (user nobody) must traverse it.
        self.root.chmod(0o755)
        self._stack = contextlib.ExitStack()
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> DemoSession:
        # A shell starts background jobs with SIGINT ignored; the demo wants Ctrl-C / kill -INT.
        self._old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, _interrupt)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(ignored, signal.SIG_IGN)
        # After a failure the logs are the explanation: keep them for the user to read.
        failed = exc_type is not None and not issubclass(exc_type, KeyboardInterrupt)
        try:
            self._stack.close()
        finally:
            if self.keep or failed:
                why = "--keep" if self.keep else "the demo failed: its logs are there"
                print(f"Kept the demo's files ({why}): {self.root}", flush=True)
            else:
                shutil.rmtree(self.root, ignore_errors=True)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)

    def callback(self, function: Callable[..., Any], *args: Any) -> None:
        self._stack.callback(function, *args)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def say(text: str = "") -> None:
    """Print one line now (the demo's console is its progress report)."""
    print(text, flush=True)
    sys.stdout.flush()


def step(number: int, total: int, text: str) -> None:
    say(f"[{number}/{total}] {text}")
