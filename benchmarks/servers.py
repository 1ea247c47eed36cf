"""Real mail servers for the benchmarks, from the checkout's ``devtools/``.

- :func:`dovecot_server`: Dovecot (IMAP/POP3, implicit TLS and STARTTLS) from a temporary
  config, as in ``tests/conftest.py``; it is its own process already.
- :class:`SmtpServerProcess`: the tests' aiosmtpd server, but in a child process
  (``python -m benchmarks.servers smtp``), so the server's work does not compete with the
  client under measurement for this process's GIL.

Everything listens on 127.0.0.1 only and is stopped by the object that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from devtools.certs import Certificate, make_certificate
from devtools.dovecot import Dovecot
from devtools.processes import reap
from devtools.smtp import SMTP_PASSWORD, SMTP_USER, SmtpServer

__all__ = [
    "SMTP_PASSWORD",
    "SMTP_USER",
    "Certificate",
    "SmtpServerProcess",
    "bench_workdir",
    "dovecot_server",
]


@contextlib.contextmanager
def bench_workdir() -> Iterator[tuple[Path, Certificate]]:
    """A temp dir and a throw-away certificate for ``localhost`` in it; removed afterwards.

    Mode 0755: Dovecot's unprivileged processes must traverse it.
    """
    path = Path(tempfile.mkdtemp(prefix="mail-provider-bench-"))
    path.chmod(0o755)
    try:
        yield path, make_certificate(path / "certs")
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def dovecot_server(
    workdir: Path, certificate: Certificate, users: dict[str, str]
) -> Iterator[Dovecot]:
    """A running Dovecot with TLS for ``users``; stopped on exit."""
    server = Dovecot(workdir / "dovecot", certificate, users=dict(users)).start()
    try:
        yield server
    finally:
        server.stop()


class SmtpServerProcess:
    """aiosmtpd (``devtools.smtp.SmtpServer``) in a child process.

    :param flavour: ``plain``, ``starttls`` (STARTTLS required before AUTH) or ``ssl``.
    :param certificate: the server's certificate.

    The child answers two commands on its stdin: ``count`` (messages received since the
    last ``reset``) and ``reset``; closing stdin stops it.
    """

    def __init__(self, flavour: str, certificate: Certificate) -> None:
        self.flavour = flavour
        self.certificate = certificate
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def security(self) -> str:
        """The provider's Security Method for this flavour."""
        return {"plain": "none"}.get(self.flavour, self.flavour)

    def start(self) -> SmtpServerProcess:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.servers",
                "smtp",
                "--flavour",
                self.flavour,
                "--cert",
                str(self.certificate.cert_path),
                "--key",
                str(self.certificate.key_path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._ask(None))
        return self

    def _ask(self, command: str | None) -> str:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the SMTP server process is not running")
        if command is not None:
            process.stdin.write(command + "\n")
            process.stdin.flush()
        answer = process.stdout.readline().strip()
        if not answer:
            raise RuntimeError(f"the SMTP server process exited ({process.poll()})")
        return answer

    def count(self) -> int:
        """Messages received since the last :meth:`reset`."""
        return int(self._ask("count"))

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # the server stops at the end of its input
        reap(process)

    def __enter__(self) -> SmtpServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _serve_smtp(flavour: str, cert_path: Path, key_path: Path) -> None:
    """The child's side of :class:`SmtpServerProcess`."""
    # aiosmtpd logs a deprecation warning on every AUTH (its own use of login_data): noise.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    certificate = Certificate(cert_path=cert_path, key_path=key_path, pem=cert_path.read_text())
    server = SmtpServer(flavour, certificate).start()
    try:
        print(server.port, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(len(server.recorder.messages), flush=True)
            elif command == "reset":
                server.recorder.reset()
                print("ok", flush=True)
            else:
                print(f"unknown command {command!r}", flush=True)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.servers smtp --flavour F --cert C --key K``."""
    parser = argparse.ArgumentParser(description="mail servers for the benchmarks")
    commands = parser.add_subparsers(dest="command", required=True)
    smtp = commands.add_parser("smtp", help="run aiosmtpd until stdin closes")
    smtp.add_argument("--flavour", default="starttls")
    smtp.add_argument("--cert", type=Path, required=True)
    smtp.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)
    _serve_smtp(args.flavour, args.cert, args.key)


if __name__ == "__main__":
    main()
