"""A throw-away Redis on 127.0.0.1 for the Celery variant of the deployment suite.

Debian's ``redis-server`` (``apt-get install redis-server``; the package's own system-wide
service is not used), started in the foreground in its own process group on a free port,
with no persistence: the broker only needs to live as long as the test. ``stop()`` ends it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.certs import free_port
from devtools.processes import stop_process_group


def server_binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class Redis:
    """``start()`` a Redis that only this test uses; ``url`` is the Celery broker URL."""

    binary: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mail-deploy-redis-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> Redis:
        args = ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            [self.binary, *args],
            stdout=(self.root / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "redis.log").read_text()
            if self._answers():
                return self
            time.sleep(0.2)
        raise AssertionError(f"redis-server did not answer on port {self.port} in {timeout} s.")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
