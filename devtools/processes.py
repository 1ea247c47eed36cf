"""Stopping the servers the tests start, each in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the process's group, SIGKILL what is left after ``timeout`` seconds, reap it.

    The process must have been started with ``start_new_session=True``, so its group
    holds exactly what it started (Dovecot's children, the api-server's workers). Members
    can outlive the leader (workers of a killed parent), so the group is always killed at
    the end, not only when the leader did not stop in time.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def reap(process: subprocess.Popen[str], timeout: float = 10) -> None:
    """Wait for a child asked to stop, SIGKILL it after ``timeout`` seconds, close its stdout."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
