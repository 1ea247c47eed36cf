"""Drain a backlog: 10,000 unseen messages, ``max_emails=-1``, 20 ms RTT.

Run from the repository root (needs Dovecot; starts and stops its own)::

    python -m benchmarks.backlog                    # 10,000 messages, 3 rounds
    python -m benchmarks.backlog --messages 2000 --repeat 5

Contenders, each in a fresh child process so that its peak RSS is its own, timed from
connecting to logging out (implicit TLS, verified), through :mod:`devtools.latency_proxy`:

- ``ours``: ``ImapHook(conn).receive(unseen_only=True, max_emails=-1)``: takes the messages
  (``\\Seen``), fetches them in chunks of ``FETCH_CHUNK``, builds every record;
- ``wire floor``: raw imapclient: ``UID SEARCH UNSEEN``, one ``UID FETCH 1:* BODY.PEEK[]``
  of everything, no parsing, nothing marked.

The messages are bulk-loaded as maildir files (as in :mod:`benchmarks.memory`) and made
unseen again, untimed, before every run. RSS growth is the child's peak (``VmHWM``) minus
its resident size right before the timed call (Airflow and the provider already imported).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import ssl
import statistics
import sys
import tempfile
import time
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

from benchmarks.harness import (
    define_imap_connection,
    machine_note,
    prepare_airflow_home,
    profile_rows,
    report_to_parent,
    run_child,
    status_kb,
)
from benchmarks.memory import bulk_load, first_select
from benchmarks.servers import bench_workdir, dovecot_server
from devtools.latency_proxy import ProxyProcess

USER, PASSWORD = "backlog", "backlog-Secret-2024"
CONN_ID = "bench_backlog"


def child(which: str, port: int, cafile: str, expected: int, profile: bool) -> None:
    """One timed drain in this (fresh) process; reports seconds, CPU and RSS.

    ``profile``: under cProfile, reporting where the time went instead.
    """
    from airflow_provider_mail.hooks.imap import ImapHook

    count = 0
    hook = ImapHook(CONN_ID)
    # Untimed: reading the connection imports much of Airflow on first use, which a
    # worker has done long before its task runs.
    _ = hook.settings
    rss_before = status_kb("VmRSS")
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if which == "ours":
        with tempfile.TemporaryDirectory() as attachments, hook:
            receive = functools.partial(
                hook.receive, unseen_only=True, max_emails=-1, attachments_dir=attachments
            )
            count = len(profiler.runcall(receive) if profiler else receive())
    else:
        context = ssl.create_default_context(cafile=cafile)
        client = IMAPClient("localhost", port=port, ssl=True, ssl_context=context)
        client.login(USER, PASSWORD)
        client.select_folder("INBOX")
        unseen = client.search("UNSEEN")
        status, data = client._imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        count = len(parse_fetch_response(data, True, True)) if status == "OK" and unseen else 0
        client.logout()
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "count": count,
        "rss_before_mb": rss_before / 1024,
        "rss_peak_mb": status_kb("VmHWM") / 1024,
    }
    if profiler is not None:
        result["profile"] = profile_rows(pstats.Stats(profiler))
    if count != expected:
        result["error"] = f"{which} received {count} messages, expected {expected}"
    report_to_parent(result)


def mark_unseen(port: int) -> None:
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=120) as client:
        client.login(USER, PASSWORD)
        client.select_folder("INBOX")
        client._imap.uid("STORE", "1:*", "-FLAGS.SILENT", r"(\Seen)")
        client.logout()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.010, help="one-way delay, seconds")
    parser.add_argument("--child", choices=["ours", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="then where ours spends")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.port, args.cafile, args.messages, args.profile)
        return

    prepare_airflow_home()
    with (
        bench_workdir() as (workdir, certificate),
        dovecot_server(workdir, certificate, {USER: PASSWORD}) as dovecot,
    ):
        print(f"Loading {args.messages} messages ...", flush=True)
        bulk_load(dovecot, USER, args.messages)
        first_select(dovecot, USER)
        with ProxyProcess(dovecot.imaps_port, delay=args.delay) as proxy:
            define_imap_connection(
                CONN_ID,
                port=proxy.port,
                login=USER,
                password=PASSWORD,
                certificate_pem=certificate.pem,
                timeout=300,
            )
            cafile = str(certificate.cert_path)
            results: dict[str, list[dict[str, Any]]] = {"ours": [], "floor": []}
            for round_number in range(args.repeat):
                for which in results:
                    mark_unseen(dovecot.imap_port)
                    options = ["--child", which, "--port", str(proxy.port), "--cafile", cafile]
                    options += ["--messages", str(args.messages)]
                    results[which].append(run_child("benchmarks.backlog", *options))
                print(f"  round {round_number + 1}/{args.repeat} done", flush=True)
            if args.profile:
                mark_unseen(dovecot.imap_port)
                options = ["--child", "ours", "--port", str(proxy.port), "--cafile", cafile]
                options += ["--messages", str(args.messages), "--profile"]
                profiled = run_child("benchmarks.backlog", *options)
    floor = statistics.median(run["seconds"] for run in results["floor"])
    print(
        f"\n### Drain {args.messages:,} unseen messages (~1 KB each), `max_emails=-1`, "
        f"{2 * args.delay * 1000:g} ms RTT, implicit TLS (median of {args.repeat})\n"
    )
    print(
        "| contender | time (s) | x wire floor | CPU (s) | RSS before (MB) | "
        "peak RSS growth (MB) |\n|---|---:|---:|---:|---:|---:|"
    )
    names = {
        "ours": "ours: `ImapHook.receive(unseen_only=True, max_emails=-1)`",
        "floor": "wire floor: one `UID FETCH 1:* BODY.PEEK[]`, nothing parsed",
    }
    for which, runs in results.items():
        seconds = statistics.median(run["seconds"] for run in runs)
        before = statistics.median(run["rss_before_mb"] for run in runs)
        growth = statistics.median(run["rss_peak_mb"] - run["rss_before_mb"] for run in runs)
        cpu = statistics.median(run["cpu_s"] for run in runs)
        print(
            f"| {names[which]} | {seconds:.2f} | {seconds / floor:.2f} | {cpu:.2f} | "
            f"{before:.0f} | {growth:.0f} |"
        )
    if args.profile:
        print(
            f"\nWhere ours spends its time (cProfile of one more drain, "
            f"{profiled['seconds']:.1f} s):\n"
        )
        for row, seconds in profiled["profile"].items():
            print(f"- {row}: {seconds:.2f} s")
    print(f"\n{machine_note()} Each run in a fresh process (`{os.path.basename(sys.executable)}`).")


if __name__ == "__main__":
    main()
