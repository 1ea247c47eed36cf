"""Receive 200 messages with attachments over IMAP (implicit TLS): ours vs official vs floor.

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.receive                  # 200 messages, 5 rounds, 20 ms RTT
    python -m benchmarks.receive --repeat 9 --delay 0.025 --profile

Contenders, each timed from connecting to logging out (TLS handshake and login included):

- ``ours``: ``ImapHook(conn).receive(max_emails=-1, unseen_only=False)``, which parses every
  message into a record, writes every attachment to disk and sets ``\\Seen``;
- ``official``: ``airflow.providers.imap``'s ``ImapHook.download_mail_attachments(".*",
  check_regex=True)``, which also parses every message and writes every attachment;
- ``floor``: raw imapclient: login, select, one ``UID FETCH 1:* BODY.PEEK[]``, logout; no
  MIME parsing, nothing written.

Networks: ``loopback`` (straight to Dovecot) and ``20 ms RTT`` (through
:mod:`benchmarks.latency_proxy` in its own process, 10 ms each way). All TLS is verified
against the throw-away certificate; the official hook can only use the system trust store
(``ssl_context`` ``default`` or ``none``), so this process sets ``SSL_CERT_FILE`` to it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import email
import io
import itertools
import os
import pstats
import socket
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

from benchmarks.harness import (
    Contender,
    define_connection,
    machine_note,
    markdown_table,
    measure,
    prepare_airflow_home,
)
from benchmarks.latency_proxy import ProxyProcess
from benchmarks.servers import Certificate, bench_workdir, dovecot_server

USER, PASSWORD = "bench", "bench-Secret-2024"
LOOPBACK = "loopback"


def wan_name(delay: float) -> str:
    return f"{2 * delay * 1000:g} ms RTT"


def messages(count: int) -> list[bytes]:
    """Messages like an info@ inbox receives: UTF-8 names, a short text, a 2 KB PDF."""
    names = ["Jane Doe", "Renée Müller", "Doe, John", "李小龙", "O'Brien"]
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
    result = []
    for number in range(count):
        name = names[number % len(names)]
        message = EmailMessage()
        message["From"] = f'"{name}" <sender{number}@example.com>'
        message["To"] = "info@example.org"
        message["Subject"] = f"Commande n°{number} - facture jointe"
        message["Date"] = "Wed, 01 May 2024 09:30:00 +0200"
        message["Message-ID"] = f"<bench-receive-{number}@example.com>"
        message.set_content(f"Bonjour,\n\nvoici la facture {number}.\n\n{name}\n")
        message.add_attachment(
            pdf, maintype="application", subtype="pdf", filename=f"facture-{number}.pdf"
        )
        result.append(message.as_bytes())
    return result


class Setup:
    """Connections and helpers for one benchmark run."""

    def __init__(self, workdir: Path, certificate: Certificate, count: int) -> None:
        self.workdir = workdir
        self.certificate = certificate
        self.count = count
        self.ports: dict[str, int] = {}
        self._runs = itertools.count()

    def attachments_dir(self) -> Path:
        """A fresh directory per run, so no run finds the files of another."""
        return self.workdir / "attachments" / str(next(self._runs))

    def define(self, network: str, port: int) -> None:
        self.ports[network] = port
        for name, claim_lock in (("bench_ours_", "host"), ("bench_ours_server_lock_", "server")):
            define_connection(
                name + self.key(network),
                "mail_imap",
                port=port,
                login=USER,
                password=PASSWORD,
                security="ssl",
                server_certificate=self.certificate.pem,
                timeout=60,
                claim_lock=claim_lock,
            )
        define_connection(
            f"bench_official_{self.key(network)}",
            "imap",
            port=port,
            login=USER,
            password=PASSWORD,
            use_ssl=True,
            ssl_context="default",
        )

    @staticmethod
    def key(network: str) -> str:
        return "".join(char for char in network if char.isalnum()).lower()

    def ours(self, network: str) -> None:
        from airflow_provider_mail.hooks.imap import ImapHook

        with ImapHook(f"bench_ours_{self.key(network)}") as hook:
            records = hook.receive(
                max_emails=-1, unseen_only=False, attachments_dir=str(self.attachments_dir())
            )
        _check(len(records), self.count, "ours")

    def ours_unseen(self, network: str, claim_lock: str = "host") -> None:
        """``unseen_only=True``: the messages are taken (claimed) before they are read."""
        from airflow_provider_mail.hooks.imap import ImapHook

        conn_id = "bench_ours_" + ("server_lock_" if claim_lock == "server" else "")
        with ImapHook(conn_id + self.key(network)) as hook:
            records = hook.receive(
                max_emails=-1, unseen_only=True, attachments_dir=str(self.attachments_dir())
            )
        _check(len(records), self.count, f"ours, unseen only, claim lock {claim_lock}")

    def mark_unseen(self) -> None:
        """Untimed, after an unseen-only run: every message unseen again for the next run."""
        context = ssl.create_default_context(cafile=str(self.certificate.cert_path))
        with IMAPClient(
            "localhost", port=self.ports[LOOPBACK], ssl=True, ssl_context=context
        ) as client:
            client.login(USER, PASSWORD)
            client.select_folder("INBOX")
            client.remove_flags(client.search("ALL"), [b"\\Seen"], silent=True)

    def official(self, network: str) -> None:
        from airflow.providers.imap.hooks.imap import ImapHook as OfficialImapHook

        directory = self.attachments_dir()
        directory.mkdir(parents=True)
        with OfficialImapHook(f"bench_official_{self.key(network)}") as hook:
            hook.download_mail_attachments(".*", str(directory), check_regex=True)
        _check(len(list(directory.iterdir())), self.count, "official")

    def floor(self, network: str) -> None:
        context = ssl.create_default_context(cafile=str(self.certificate.cert_path))
        client = IMAPClient("localhost", port=self.ports[network], ssl=True, ssl_context=context)
        client.login(USER, PASSWORD)
        client.select_folder("INBOX")
        # IMAPClient.fetch() wants explicit ids (it filters the answer by them), so the
        # one-command "1:*" goes through its imaplib connection, parsed the way fetch() does.
        status, data = client._imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        response = parse_fetch_response(data, True, True) if status == "OK" else {}
        client.logout()
        _check(len(response), self.count, "floor")


def _check(got: int, expected: int, who: str) -> None:
    if got != expected:
        raise RuntimeError(f"{who} received {got} messages, expected {expected}")


@contextlib.contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def phase_breakdown(setup: Setup, network: str, hook_class: type[Any]) -> dict[str, float]:
    """Where one ``receive`` spends its time: the hook's steps, fetch split in wire/parse."""
    from airflow_provider_mail.mail.attachments import DirectorySink

    phases: dict[str, float] = {}
    hook = hook_class(f"bench_ours_{setup.key(network)}")
    with _timed(phases, "total"):
        with _timed(phases, "read the Airflow connection"):
            _ = hook.settings
        with _timed(phases, "connect + TLS + login"):
            client = hook.client
        wire_fetch: Callable[..., Any] = client.fetch

        def timed_fetch(*args: Any, **kwargs: Any) -> Any:
            with _timed(phases, "UID FETCH (wire + imapclient)"):
                return wire_fetch(*args, **kwargs)

        client.fetch = timed_fetch
        with _timed(phases, "SELECT + UID SEARCH"):
            claim = hook.find_new(None, unseen_only=False, max_emails=-1)
        with _timed(phases, "fetch() total"):
            hook.fetch(claim, DirectorySink(str(setup.attachments_dir())))
        with _timed(phases, "STORE +FLAGS \\Seen"):
            hook.mark_seen(claim)
        with _timed(phases, "LOGOUT"):
            hook.close()
    phases["parse + write attachments"] = (
        phases.pop("fetch() total") - phases["UID FETCH (wire + imapclient)"]
    )
    phases["total"] = phases.pop("total")  # last row
    return phases


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(run[phase] for run in runs) for phase in runs[0]}


def cpu_costs(count: int, scratch: Path) -> dict[str, float]:
    """CPU seconds (best of 5) of the work ``fetch()`` does after the wire, per batch.

    Attachments are written under ``scratch``, which the caller removes.
    """
    from airflow_provider_mail.mail.attachments import DirectorySink
    from airflow_provider_mail.mail.parse import build_record

    raw = messages(count)

    class DiscardingSink:
        def save(self, message_key: str, filename: str | None, kind: str, data: bytes) -> str:
            return message_key

    def records(sink: Any) -> None:
        for uid, message in enumerate(raw, start=1):
            build_record(message, folder="INBOX", attachments=sink, uid=uid, uidvalidity=1)

    steps: dict[str, Callable[[], object]] = {
        "`email.message_from_bytes` only (compat32)": lambda: [
            email.message_from_bytes(message) for message in raw
        ],
        "`build_record`, attachments discarded": lambda: records(DiscardingSink()),
        "`build_record` + `DirectorySink` (what `receive` does)": lambda: records(
            DirectorySink(tempfile.mkdtemp(dir=scratch))
        ),
    }
    costs = {}
    for name, step in steps.items():
        # Process time, best of 5: the machine may be shared, and this is about CPU only.
        samples = []
        for _ in range(5):
            started = time.process_time()
            step()
            samples.append(time.process_time() - started)
        costs[name] = min(samples)
    return costs


def proposed_hook_class() -> type[Any]:
    """``ImapHook`` with the session changes this benchmark proposes, to measure them.

    - ``TCP_NODELAY``: imapclient sends ``SEARCH`` (and every command built by its
      ``_raw_command``) in two writes, the command and then ``CRLF``; Nagle holds the
      ``CRLF`` until the server acknowledges the first segment, and the server delays that
      ACK (up to 40 ms on Linux) because the command is incomplete.
    - ``capabilities()`` right after login: ``SELECT`` makes imaplib forget the capability
      list the server sent with its LOGIN reply, so imapclient's first ``SEARCH`` would send
      a ``CAPABILITY`` command first (one more round trip).

    A factory, because Airflow may only be imported once its home is set.
    """
    from airflow_provider_mail.hooks.imap import ImapHook
    from airflow_provider_mail.mail.settings import ServerSettings

    class ProposedImapHook(ImapHook):
        def _open(self, settings: ServerSettings) -> IMAPClient:
            client = super()._open(settings)
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.capabilities()
            return client

    return ProposedImapHook


def profile(setup: Setup, networks: list[str], repeat: int, count: int) -> None:
    """Where ``ours`` spends its time, and what the proposed session changes save."""
    from airflow_provider_mail.hooks.imap import ImapHook

    proposed_hook = proposed_hook_class()
    columns = {f"ours, {network}": (network, ImapHook) for network in networks} | {
        f"proposed, {networks[-1]}": (networks[-1], proposed_hook)
    }
    breakdowns = {
        column: median_phases([phase_breakdown(setup, network, hook_class) for _ in range(3)])
        for column, (network, hook_class) in columns.items()
    }
    print("\n### Where `ours` spends its time (ms, median of 3)\n")
    print("| phase | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for phase in next(iter(breakdowns.values())):
        cells = " | ".join(f"{breakdowns[column][phase] * 1000:.1f}" for column in columns)
        print(f"| {phase} | {cells} |")

    print(f"\n### CPU for {count} messages, no network (best of 5)\n")
    print("| step | CPU (ms) |\n|---|---:|")
    for name, seconds in cpu_costs(count, setup.workdir).items():
        print(f"| {name} | {seconds * 1000:.1f} |")

    def proposed(network: str) -> None:
        with proposed_hook(f"bench_ours_{setup.key(network)}") as hook:
            records = hook.receive(
                max_emails=-1, unseen_only=False, attachments_dir=str(setup.attachments_dir())
            )
        _check(len(records), count, "proposed")

    contenders = [
        Contender("ours, as is", setup.ours),
        Contender("ours + `TCP_NODELAY` + capabilities kept (proposed)", proposed),
        Contender("floor", setup.floor, is_floor=True),
    ]
    measure(contenders, networks, repeat)
    print(f"\n### The proposed session changes (median of {repeat})\n")
    print(markdown_table(contenders, networks))

    profiler = cProfile.Profile()
    profiler.enable()
    setup.ours(LOOPBACK)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    print("\ncProfile of `ours` on loopback (top 25 by cumulative time):\n```")
    print(text.getvalue().strip())
    print("```")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--delay", type=float, default=0.010, help="one-way delay, seconds")
    parser.add_argument("--profile", action="store_true", help="also show where ours spends")
    args = parser.parse_args(argv)

    prepare_airflow_home()
    wan = wan_name(args.delay)
    with (
        bench_workdir() as (workdir, certificate),
        dovecot_server(workdir, certificate, {USER: PASSWORD}) as dovecot,
    ):
        # The official hook trusts only the system store; this makes it trust our cert.
        os.environ["SSL_CERT_FILE"] = str(certificate.cert_path)
        print(f"Delivering {args.messages} messages with a 2 KB PDF each ...", flush=True)
        dovecot.deliver(USER, messages(args.messages))
        setup = Setup(workdir, certificate, args.messages)
        with ProxyProcess(dovecot.imaps_port, delay=args.delay) as proxy:
            setup.define(LOOPBACK, dovecot.imaps_port)
            setup.define(wan, proxy.port)
            contenders = [
                Contender(
                    "ours: `ImapHook.receive(max_emails=-1)`",
                    setup.ours,
                    verify=setup.mark_unseen,
                ),
                Contender(
                    "ours: `unseen_only=True` (claim, Claim Lock host)",
                    setup.ours_unseen,
                    verify=setup.mark_unseen,
                ),
                Contender(
                    "ours: `unseen_only=True` (claim, Claim Lock server)",
                    lambda network: setup.ours_unseen(network, "server"),
                    verify=setup.mark_unseen,
                ),
                Contender("official: `ImapHook.download_mail_attachments`", setup.official),
                Contender(
                    "floor: imapclient, one `UID FETCH 1:* BODY.PEEK[]`",
                    setup.floor,
                    is_floor=True,
                ),
            ]
            networks = [LOOPBACK, wan]
            measure(contenders, networks, args.repeat)
            print(
                f"\n### Receive {args.messages} messages with a 2 KB attachment each "
                f"(IMAP, implicit TLS, median of {args.repeat})\n"
            )
            print(markdown_table(contenders, networks))
            print(
                "\nEvery contender connects, negotiates TLS (verified), logs in and logs out "
                "within its time. The official hook verifies through `SSL_CERT_FILE`. "
                f"{machine_note()}"
            )
            if args.profile:
                profile(setup, networks, args.repeat, args.messages)


if __name__ == "__main__":
    main()
