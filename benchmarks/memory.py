"""Memory for one huge message, and poll time against folder size (IMAP, implicit TLS).

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.memory                          # 50 MB attachment; 100 vs 10,000
    python -m benchmarks.memory --attachment-mb 20 --big 20000 --polls 9

(a) A message with a short text part and one random ~50 MB attachment (base64 in the
message, so the message is ~4/3 of that) is APPENDed, then received with
``ImapHook.receive(max_emails=1)`` in a fresh child process. The child reports its peak
RSS (``ru_maxrss``) growth over its baseline after imports and after reading the
connection, as a multiple of the message size, and checks the attachment on disk (size
and SHA-256).

(b) Two users' inboxes, one with ``--small`` and one with ``--big`` seen messages, bulk
loaded as maildir files (owned by ``nobody``) that Dovecot indexes on the first SELECT.
Before each timed poll, 5 fresh unseen messages are APPENDed; the poll takes them with
``max_emails=5, unseen_only=True`` (SELECT, SEARCH UNSEEN, the CONDSTORE claim, ``UID FETCH
BODY.PEEK[]``, ``STORE \\Seen``), in a new session per poll and in a kept session; a
third mode polls ``unseen_only=False`` (``SEARCH ALL``) in a kept session. Each step is
timed separately; the tables show medians.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from benchmarks.harness import define_imap_connection, machine_note, prepare_airflow_home
from benchmarks.servers import bench_workdir, dovecot_server

PASSWORD = "memory-Secret-2024"
HUGE_USER, SMALL_USER, BIG_USER = "huge", "small", "big"
NOBODY = 65534
MiB = 2**20
CPU = " (client CPU)"


# --- (a) one huge message, received in a child process ------------------------------------


def huge_message(attachment_bytes: int) -> tuple[bytes, str]:
    """The raw message and the SHA-256 of its attachment (random, so incompressible)."""
    data = os.urandom(attachment_bytes)
    mail = EmailMessage()
    mail["From"] = "Archive <archive@example.com>"
    mail["To"] = "info@example.org"
    mail["Subject"] = "Quarterly export"
    mail["Message-ID"] = "<memory-huge@example.com>"
    mail.set_content("The export is attached.\n")
    mail.add_attachment(data, maintype="application", subtype="octet-stream", filename="export.bin")
    return mail.as_bytes(), hashlib.sha256(data).hexdigest()


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` (the kernel's peak RSS) to the current RSS; False if not allowed.

    ``ru_maxrss`` cannot be reset, and Linux carries it over from the parent through
    fork and exec, so a child of a big parent starts with the parent's peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_receive(conn_id: str, attachments_dir: str) -> dict[str, Any]:
    """In a fresh process: imports, the connection, then one ``receive(max_emails=1)``."""
    from airflow_provider_mail.hooks.imap import ImapHook

    hook = ImapHook(conn_id)
    _ = hook.settings
    gc.collect()
    baseline = status_bytes("VmRSS")
    maxrss_baseline = max_rss_bytes()
    hwm_reset = reset_peak_rss()
    started = time.perf_counter()
    with hook:
        records = hook.receive(max_emails=1, attachments_dir=attachments_dir)
    seconds = time.perf_counter() - started
    peak = status_bytes("VmHWM") if hwm_reset else max_rss_bytes()
    maxrss_peak = max_rss_bytes()
    files = []
    for attachment in records[0]["attachments"] if records else []:
        digest = hashlib.sha256()
        with open(attachment["path"], "rb") as stream:
            while chunk := stream.read(MiB):
                digest.update(chunk)
        files.append(
            {
                "size": attachment["size"],
                "size_on_disk": os.path.getsize(attachment["path"]),
                "sha256": digest.hexdigest(),
            }
        )
    return {
        "baseline": baseline,
        "peak": peak,
        "hwm_reset": hwm_reset,
        "maxrss_baseline": maxrss_baseline,
        "maxrss_peak": maxrss_peak,
        "seconds": seconds,
        "records": len(records),
        "message_size": records[0]["size"] if records else 0,
        "files": files,
    }


def measure_huge(dovecot: Any, conn_id: str, workdir: Path, attachment_bytes: int) -> str:
    raw, sha256 = huge_message(attachment_bytes)
    message_bytes = len(raw)
    started = time.perf_counter()
    dovecot.deliver(HUGE_USER, [raw])
    append_seconds = time.perf_counter() - started
    del raw
    attachments_dir = workdir / "huge-attachments"
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--child-receive",
            conn_id,
            str(attachments_dir),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    growth = result["peak"] - result["baseline"]
    files = result["files"]
    written = (
        len(files) == 1
        and files[0]["size_on_disk"] == attachment_bytes
        and files[0]["size"] == attachment_bytes
        and files[0]["sha256"] == sha256
    )
    rows = [
        ("message size (as fetched)", f"{message_bytes / MiB:.1f} MiB ({message_bytes:,} bytes)"),
        ("attachment size (decoded)", f"{attachment_bytes / MiB:.1f} MiB"),
        ("APPEND (untimed setup)", f"{append_seconds:.1f} s"),
        ("child RSS after imports + connection", f"{result['baseline'] / MiB:.0f} MiB"),
        (
            "child peak RSS ("
            + ("`VmHWM`, reset at baseline" if result["hwm_reset"] else "`ru_maxrss`")
            + ")",
            f"{result['peak'] / MiB:.0f} MiB",
        ),
        (
            "child `ru_maxrss` at baseline / after (inherited from the parent)",
            f"{result['maxrss_baseline'] / MiB:.0f} / {result['maxrss_peak'] / MiB:.0f} MiB",
        ),
        ("**peak growth**", f"**{growth / MiB:.0f} MiB**"),
        ("**peak growth / message size**", f"**{growth / message_bytes:.2f}x** (target < 3x)"),
        ("peak growth / attachment size", f"{growth / attachment_bytes:.2f}x"),
        ("`receive(max_emails=1)` time", f"{result['seconds']:.2f} s"),
        (
            "attachment written",
            ("yes, size and SHA-256 match" if written else f"NO: {files}")
            + f" ({result['records']} record)",
        ),
    ]
    lines = ["| | |", "|---|---:|"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# --- (b) poll time against folder size -----------------------------------------------------


def small_message(number: int, seen_folder: str) -> bytes:
    return (
        f"From: Lead {number} <lead{number}@example.com>\r\n"
        "To: info@example.org\r\n"
        f"Subject: Request {number} for {seen_folder}\r\n"
        "Date: Wed, 01 May 2024 09:30:00 +0200\r\n"
        f"Message-ID: <memory-{seen_folder}-{number}-{time.time_ns()}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Hello,\r\nplease call me back about request {number}.\r\n" + "Regards.\r\n" * 20
    ).encode()


def bulk_load(maildir: Path, count: int) -> float:
    """``count`` seen messages written straight into a maildir; returns the seconds taken.

    Dovecot reads a maildir it does not know yet on the first SELECT (which assigns UIDs);
    its processes run as ``nobody``, so everything must belong to ``nobody``.
    """
    started = time.perf_counter()
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time()) - count
    for number in range(count):
        path = maildir / "cur" / f"{stamp + number}.M{number}P{os.getpid()}.bench:2,S"
        path.write_bytes(small_message(number, maildir.name))
    for directory, _dirs, files in os.walk(maildir):
        os.chown(directory, NOBODY, NOBODY)
        for name in files:
            os.chown(os.path.join(directory, name), NOBODY, NOBODY)
    return time.perf_counter() - started


class Poller:
    """Timed polls of one inbox; each step of a poll is a separate phase."""

    def __init__(self, dovecot: Any, user: str, conn_id: str, workdir: Path) -> None:
        from airflow_provider_mail.hooks.imap import ImapHook

        self.dovecot = dovecot
        self.user = user
        self.conn_id = conn_id
        self.workdir = workdir
        self.hook_class = ImapHook
        self.kept: Any = None
        self.runs = 0

    def deliver_unseen(self) -> None:
        self.dovecot.deliver(self.user, [small_message(n, f"fresh-{self.runs}") for n in range(5)])

    def poll(self, mode: str) -> dict[str, float]:
        """One timed poll; ``mode`` is ``new session``, ``kept session`` or ``all, kept``."""
        from airflow_provider_mail.mail.attachments import DirectorySink

        unseen_only = mode != "all, kept"
        if unseen_only:
            self.deliver_unseen()
        if mode == "new session":
            hook = self.hook_class(self.conn_id)
            _ = hook.settings
        else:
            if self.kept is None:
                self.kept = self.hook_class(self.conn_id)
                self.kept._select("INBOX")
            hook = self.kept
            # A kept session learns of the APPENDs above only with its next command, and
            # Dovecot's SEARCH does not yet include them (see benchmarks/triggerer_scale.py):
            # sync untimed, so that this poll is the one that takes them.
            hook.client.noop()
        self.runs += 1
        sink = DirectorySink(str(self.workdir / "poll-attachments" / str(self.runs)))
        phases: dict[str, float] = {}
        with timed(phases, "total"):
            with timed(phases, "connect + TLS + login"):
                _ = hook.client
            with timed(phases, "SELECT"):
                hook._select("INBOX")
            with timed(phases, "SEARCH"):
                claim = hook.find_new(None, unseen_only, 5)
            with timed(phases, "claim (FETCH FLAGS MODSEQ + STORE)"):
                if unseen_only:
                    claim = hook.mailbox.take(claim)
            with timed(phases, "FETCH BODY.PEEK[] + parse"):
                records = hook.fetch(claim, sink)
            with timed(phases, "STORE \\Seen"):
                hook.mailbox.mark(claim)
            with timed(phases, "LOGOUT"):
                if mode == "new session":
                    hook.close()
        phases["total"] = phases.pop("total")
        phases["total" + CPU] = phases.pop("total" + CPU)
        if len(records) != 5:
            raise RuntimeError(f"{mode} poll of {self.user} returned {len(records)} of 5 messages")
        return phases

    def close(self) -> None:
        if self.kept is not None:
            self.kept.close()


@contextlib.contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Wall time under ``name`` and this process's CPU time under ``name + CPU``."""
    started, cpu = time.perf_counter(), time.process_time()
    yield
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
    phases[name + CPU] = phases.get(name + CPU, 0.0) + time.process_time() - cpu


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(run[phase] for run in runs) for phase in runs[0]}


def first_select(dovecot: Any, user: str) -> float:
    """The one-off SELECT that makes Dovecot index a maildir it has not seen."""
    started = time.perf_counter()
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        client.logout()
    return time.perf_counter() - started


def measure_folders(
    dovecot: Any, conn_ids: dict[str, str], workdir: Path, sizes: dict[str, int], polls: int
) -> str:
    loads = {user: bulk_load(dovecot.maildir(user), count) for user, count in sizes.items()}
    indexing = {user: first_select(dovecot, user) for user in sizes}
    modes = ["new session", "kept session", "all, kept"]
    pollers = {user: Poller(dovecot, user, conn_ids[user], workdir) for user in sizes}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for mode in modes:
            for user in sizes:
                pollers[user].poll(mode)  # warm-up: imports, the server's caches
            # Interleaved, so that drift on a shared machine spreads over both folders.
            for _ in range(polls):
                for user, poller in pollers.items():
                    results.setdefault((mode, user), []).append(poller.poll(mode))
    finally:
        for poller in pollers.values():
            poller.close()

    small, big = sizes
    lines = [
        f"| mode | step | {sizes[small]:,} msgs: wall (client CPU) ms | "
        f"{sizes[big]:,} msgs: wall (client CPU) ms | wall ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for mode in modes:
        medians = {user: median_phases(results[(mode, user)]) for user in sizes}
        for phase in medians[small]:
            if phase.endswith(CPU):
                continue
            if phase != "total" and max(medians[user][phase] for user in sizes) < 0.00005:
                continue
            cells = [
                f"{medians[user][phase] * 1000:.1f} ({medians[user][phase + CPU] * 1000:.1f})"
                for user in sizes
            ]
            a, b = medians[small][phase], medians[big][phase]
            name = f"**{phase}**" if phase == "total" else phase
            lines.append(f"| {mode} | {name} | {cells[0]} | {cells[1]} | {b / a:.2f} |")
    setup = ", ".join(
        f"{sizes[user]:,} messages written in {loads[user]:.1f} s, first SELECT (indexing) "
        f"{indexing[user] * 1000:.0f} ms"
        for user in sizes
    )
    return "\n".join(lines) + f"\n\nBulk load: {setup}."


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attachment-mb", type=float, default=50.0, help="MiB, decoded")
    parser.add_argument("--small", type=int, default=100, help="messages in the small folder")
    parser.add_argument("--big", type=int, default=10_000, help="messages in the big folder")
    parser.add_argument("--polls", type=int, default=7, help="timed polls per mode (median)")
    parser.add_argument("--child-receive", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_receive:
        print(json.dumps(child_receive(*args.child_receive)))
        return

    home = prepare_airflow_home()
    users = {HUGE_USER: PASSWORD, SMALL_USER: PASSWORD, BIG_USER: PASSWORD}
    try:
        with (
            bench_workdir() as (workdir, certificate),
            dovecot_server(workdir, certificate, users) as dovecot,
        ):
            conn_ids: dict[str, str] = {}
            for user in users:
                conn_ids[user] = define_imap_connection(
                    f"memory_{user}",
                    port=dovecot.imaps_port,
                    login=user,
                    password=PASSWORD,
                    certificate_pem=certificate.pem,
                    timeout=120,
                )
            sections: list[tuple[str, Callable[[], str]]] = [
                (
                    f"(a) One message with a {args.attachment_mb:g} MiB attachment, "
                    "`ImapHook.receive(max_emails=1)` in a fresh process",
                    lambda: measure_huge(
                        dovecot,
                        conn_ids[HUGE_USER],
                        workdir,
                        int(args.attachment_mb * MiB),
                    ),
                ),
                (
                    f"(b) One poll (`max_emails=5`) of a folder of {args.small:,} vs "
                    f"{args.big:,} messages (median of {args.polls})",
                    lambda: measure_folders(
                        dovecot,
                        conn_ids,
                        workdir,
                        {SMALL_USER: args.small, BIG_USER: args.big},
                        args.polls,
                    ),
                ),
            ]
            for title, section in sections:
                print(f"Measuring {title[:3]} ...", flush=True)
                body = section()
                print(f"\n### {title}\n\n{body}\n", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"IMAP over implicit TLS (verified), loopback. {machine_note()}")


if __name__ == "__main__":
    main()
