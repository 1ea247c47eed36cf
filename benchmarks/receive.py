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
:mod:`devtools.latency_proxy` in its own process, 10 ms each way). All TLS is verified
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
import ssl
import tempfile
import time
from collections.abc import Callable
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
    network_key,
    prepare_airflow_home,
    profile_rows,
    wan_name,
)
from benchmarks.servers import Certificate, bench_workdir, dovecot_server
from devtools.latency_proxy import ProxyProcess

USER, PASSWORD = "bench", "bench-Secret-2024"
LOOPBACK = "loopback"


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

    def __init__(
        self, workdir: Path, certificate: Certificate, count: int, files: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.certificate = certificate
        self.count = count
        self.ports: dict[str, int] = {}
        self.tls: dict[str, bool] = {}
        self.mark_port = 0
        self._runs = itertools.count()
        # Where the attachment folders go: the benchmark's temp dir unless --files-in says.
        self.files = files or workdir / "attachments"

    def attachments_dir(self) -> Path:
        """A fresh directory per run, so no run finds the files of another."""
        return self.files / str(next(self._runs))

    def define(self, network: str, port: int, tls: bool) -> None:
        self.ports[network] = port
        self.tls[network] = tls
        for name, claim_lock in (("bench_ours_", "host"), ("bench_ours_server_lock_", "server")):
            define_connection(
                name + network_key(network),
                "mail_imap",
                port=port,
                login=USER,
                password=PASSWORD,
                security="ssl" if tls else "none",
                server_certificate=self.certificate.pem,
                timeout=60,
                claim_lock=claim_lock,
            )
        define_connection(
            f"bench_official_{network_key(network)}",
            "imap",
            port=port,
            login=USER,
            password=PASSWORD,
            use_ssl=tls,
            ssl_context="default",
        )

    def ours(self, network: str) -> None:
        from airflow_provider_mail.hooks.imap import ImapHook

        with ImapHook(f"bench_ours_{network_key(network)}") as hook:
            records = hook.receive(
                max_emails=-1, unseen_only=False, attachments_dir=str(self.attachments_dir())
            )
        _check(len(records), self.count, "ours")

    def ours_unseen(self, network: str, claim_lock: str = "host") -> None:
        """``unseen_only=True``: the messages are taken (claimed) before they are read."""
        from airflow_provider_mail.hooks.imap import ImapHook

        conn_id = "bench_ours_" + ("server_lock_" if claim_lock == "server" else "")
        with ImapHook(conn_id + network_key(network)) as hook:
            records = hook.receive(
                max_emails=-1, unseen_only=True, attachments_dir=str(self.attachments_dir())
            )
        _check(len(records), self.count, f"ours, unseen only, claim lock {claim_lock}")

    def mark_unseen(self) -> None:
        """Untimed, after an unseen-only run: every message unseen again for the next run."""
        with IMAPClient("localhost", port=self.mark_port, ssl=False) as client:
            client.login(USER, PASSWORD)
            client.select_folder("INBOX")
            client.remove_flags(client.search("ALL"), [b"\\Seen"], silent=True)

    def official(self, network: str) -> None:
        from airflow.providers.imap.hooks.imap import ImapHook as OfficialImapHook

        directory = self.attachments_dir()
        directory.mkdir(parents=True)
        with OfficialImapHook(f"bench_official_{network_key(network)}") as hook:
            hook.download_mail_attachments(".*", str(directory), check_regex=True)
        _check(len(list(directory.iterdir())), self.count, "official")

    def wire(self, network: str) -> dict[int, dict[bytes, Any]]:
        """Raw imapclient: login, select, one ``UID FETCH 1:* BODY.PEEK[]``, logout."""
        context = ssl.create_default_context(cafile=str(self.certificate.cert_path))
        tls = self.tls[network]
        client = IMAPClient(
            "localhost", port=self.ports[network], ssl=tls, ssl_context=context if tls else None
        )
        client.login(USER, PASSWORD)
        client.select_folder("INBOX")
        # IMAPClient.fetch() wants explicit ids (it filters the answer by them), so the
        # one-command "1:*" goes through its imaplib connection, parsed the way fetch() does.
        status, data = client._imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        response = parse_fetch_response(data, True, True) if status == "OK" else {}
        client.logout()
        _check(len(response), self.count, "wire")
        return response

    def floor(self, network: str) -> None:
        """The wire, then ``email.message_from_bytes`` (compat32) of every message."""
        for data in self.wire(network).values():
            email.message_from_bytes(data[b"BODY[]"])


def _check(got: int, expected: int, who: str) -> None:
    if got != expected:
        raise RuntimeError(f"{who} received {got} messages, expected {expected}")


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
        "the file system calls alone: `mkdir` + `open`/`write`/`close` per message": lambda: (
            _bare_files(Path(tempfile.mkdtemp(dir=scratch)), count)
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


def _bare_files(root: Path, count: int) -> None:
    """What ``DirectorySink`` asks of the file system for ``count`` one-attachment messages."""
    data = bytes(2048)
    for number in range(count):
        folder = root / f"INBOX-1-{number}"
        os.mkdir(folder, 0o700)
        descriptor = os.open(folder / "a.pdf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(descriptor, data)
        os.close(descriptor)


def profile(setup: Setup, networks: list[str], count: int) -> None:
    """Where ``ours`` spends its time: CPU per step without a network, cProfile per network."""
    print(f"\n### CPU for {count} messages, no network (best of 5)\n")
    print("| step | CPU (ms) |\n|---|---:|")
    setup.files.mkdir(parents=True, exist_ok=True)
    for name, seconds in cpu_costs(count, setup.files).items():
        print(f"| {name} | {seconds * 1000:.1f} |")

    print("\n### Where one `receive` spends its time (cProfile, ms)\n")
    print("| | " + " | ".join(networks) + " |\n|---|" + "---:|" * len(networks))
    columns, last = {}, None
    for network in networks:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(setup.ours, network)
        wall = time.perf_counter() - started
        setup.mark_unseen()
        last = pstats.Stats(profiler)
        columns[network] = {"wall time (profiled)": wall, **profile_rows(last)}
    for row in next(iter(columns.values())):
        cells = " | ".join(f"{columns[network][row] * 1000:.0f}" for network in networks)
        print(f"| {row} | {cells} |")
    assert last is not None
    text = io.StringIO()
    last.stream = text  # type: ignore[attr-defined]
    last.sort_stats("tottime").print_stats(20)
    print(f"\ncProfile of `ours` on {networks[-1]} (top 20 by own time):\n```")
    print(text.getvalue().strip())
    print("```")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (median)")
    parser.add_argument(
        "--rtts", default="0,1,20", help="round-trip times in ms, comma-separated (0: loopback)"
    )
    parser.add_argument("--tls", choices=["both", "on", "off"], default="both")
    parser.add_argument("--claims", action="store_true", help="also the unseen_only rows")
    parser.add_argument("--profile", action="store_true", help="also show where ours spends")
    parser.add_argument(
        "--files-in",
        type=Path,
        help="write ours' attachment folders under this directory (default: the temp dir)",
    )
    args = parser.parse_args(argv)

    prepare_airflow_home()
    rtts = [float(rtt) for rtt in args.rtts.split(",")]
    modes = {"both": [True, False], "on": [True], "off": [False]}[args.tls]
    with (
        bench_workdir() as (workdir, certificate),
        dovecot_server(workdir, certificate, {USER: PASSWORD}) as dovecot,
        contextlib.ExitStack() as stack,
    ):
        # The official hook trusts only the system store; this makes it trust our cert.
        os.environ["SSL_CERT_FILE"] = str(certificate.cert_path)
        print(f"Delivering {args.messages} messages with a 2 KB PDF each ...", flush=True)
        dovecot.deliver(USER, messages(args.messages))
        setup = Setup(workdir, certificate, args.messages, args.files_in)
        setup.mark_port = dovecot.imap_port
        networks = []
        for tls in modes:
            server_port = dovecot.imaps_port if tls else dovecot.imap_port
            for rtt in rtts:
                link = wan_name(rtt / 2000) if rtt else LOOPBACK
                network = f"{'TLS' if tls else 'plain'}, {link}"
                port = server_port
                if rtt:
                    port = stack.enter_context(ProxyProcess(server_port, delay=rtt / 2000)).port
                setup.define(network, port, tls)
                networks.append(network)
        contenders = [
            Contender(
                "ours: `ImapHook.receive(max_emails=-1)`", setup.ours, verify=setup.mark_unseen
            )
        ]
        if args.claims:
            contenders += [
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
            ]
        contenders += [
            Contender("official: `ImapHook.download_mail_attachments`", setup.official),
            Contender(
                "floor: one `UID FETCH 1:* BODY.PEEK[]` + `email.message_from_bytes` each",
                setup.floor,
                is_floor=True,
            ),
            Contender("wire only: the same fetch, nothing parsed (reference)", setup.wire),
        ]
        measure(contenders, networks, args.repeat)
        print(
            f"\n### Receive {args.messages} messages with a 2 KB attachment each "
            f"(IMAP, median of {args.repeat})\n"
        )
        print(markdown_table(contenders, networks, transpose=True))
        print(
            "\nEvery contender connects, negotiates TLS (verified) where the row says TLS, "
            "logs in and logs out within its time. The official hook verifies through "
            f"`SSL_CERT_FILE`. {machine_note()}"
        )
        if args.profile:
            profile(setup, networks, args.messages)


if __name__ == "__main__":
    main()
