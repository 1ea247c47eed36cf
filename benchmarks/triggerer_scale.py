"""Thousands of deferred ``ReceiveEmailSensor``s in ONE real ``airflow triggerer``.

Run from the repository root (needs Dovecot and Debian's PostgreSQL; starts and stops its
own, with a whole Airflow)::

    python -m benchmarks.triggerer_scale --sensors 500,1000      # one deployment per size
    python -m benchmarks.triggerer_scale --sensors 5000 --window 120 --arrivals 24

Per size N: Dovecot with N/5 mailboxes (limits raised, see :func:`dovecot_limits`), a
throw-away PostgreSQL, and Airflow's api-server, scheduler, dag-processor and ONE
triggerer (``[triggerer] capacity`` raised to N + 10) on the LocalExecutor. The DAGs
(:mod:`benchmarks.scale_dags`) are one per mailbox with 5 deferrable sensors (unseen only,
``delay=5``), each run once, so the workers start N sensor tasks that defer; plus one
task that defers to :class:`benchmarks.lag_probe.LagProbeTrigger`, which measures the
triggerer's own event loop from inside it.

Once all N sensors are deferred and their triggers assigned, and one more ``2 x delay``
has passed, a steady window of ``--window`` seconds measures the triggerer (its process
and the trigger runner under it): CPU, RSS, IMAP sessions to Dovecot, the lag probe's
oversleep, Airflow's own "async thread was blocked" lines; meanwhile ``--arrivals``
messages are APPENDed, each to a different mailbox at random, and the latency from the
APPEND to the first sensor of that mailbox in state success (its ``end_date`` in the
database) is recorded. The start-up (all N sensors deferred) is reported with the CPU
all Airflow components spent on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import machine_note, percentile
from benchmarks.servers import bench_workdir
from devtools.airflow_deployment import Deployment
from devtools.connections import connection_variable
from devtools.dovecot import Dovecot
from devtools.postgres import Postgres, server_binaries

SENSORS_PER_MAILBOX = 5
DELAY = 5.0
PASSWORD = "scale-Secret-2024"
DAGS = Path(__file__).resolve().parent / "scale_dags.py"
#: BENCHMARK ONLY: the probe of the triggerer supervisor's loop, and its optional patch
#: (``--drain-supervisor``); see :mod:`benchmarks.supervisor_patch`.
SUPERVISOR_PATCH = Path(__file__).resolve().parent / "triggerer_patch"
BLOCKED = "async thread was blocked"


def dovecot_limits(mailboxes: int) -> str:
    """What Dovecot needs for one session per mailbox plus the resumed tasks' sessions.

    Every IMAP session is a process of its own (``service imap``, ``client_limit = 1``),
    so its process limit must exceed the sessions; all come from 127.0.0.1, so the
    per-user-and-IP limit must allow the triggerer's session and the tasks' at once.
    """
    sessions = 2 * mailboxes + 200
    return (
        f"mail_max_userip_connections = {SENSORS_PER_MAILBOX * 4}\n"
        f"default_process_limit = {sessions}\n"
        f"default_client_limit = {2 * sessions}\n"
        f"service imap {{\n  process_limit = {sessions}\n}}\n"
        f"service imap-login {{\n  process_limit = 64\n  client_limit = {sessions}\n}}\n"
        f"service anvil {{\n  client_limit = {2 * sessions}\n}}\n"
        f"service auth {{\n  client_limit = {2 * sessions}\n}}\n"
    )


def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    return []


def cpu_seconds(pids: list[int]) -> float:
    """CPU of these processes and everything under them, reaped children included."""
    total = 0.0
    for pid in pids:
        for process in tree(pid):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for process in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def sessions(pid: int, port: int) -> int:
    """Established TCP connections from the process tree of ``pid`` to ``port``."""
    pids = {process.pid for process in tree(pid)}
    return sum(
        1
        for conn in psutil.net_connections(kind="tcp")
        if conn.pid in pids and conn.raddr and conn.raddr.port == port
        and conn.status == psutil.CONN_ESTABLISHED
    )  # fmt: skip


class Database:
    def __init__(self, postgres: Postgres) -> None:
        import psycopg2

        self.connection = psycopg2.connect(postgres.dsn)
        self.connection.autocommit = True

    def one(self, sql: str, *params: Any) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def counts(self) -> tuple[int, int, int]:
        """Sensors deferred, sensors succeeded, triggers assigned to a triggerer."""
        deferred = self.one(
            "select count(*) from task_instance where dag_id like 'scale_m%%' "
            "and state = 'deferred'"
        )
        succeeded = self.one(
            "select count(*) from task_instance where dag_id like 'scale_m%%' and state = 'success'"
        )
        assigned = self.one("select count(*) from trigger where triggerer_id is not null")
        return int(deferred), int(succeeded), int(assigned)

    def first_success(self, dag_id: str, since: float) -> tuple[float, float, float] | None:
        """When the first sensor of ``dag_id`` to succeed after ``since`` was resumed.

        Unix times at which its trigger's event reached the database (``scheduled_dttm``),
        the scheduler queued it, and it ended; None while none has succeeded.
        """
        with self.connection.cursor() as cursor:
            cursor.execute(
                "select extract(epoch from scheduled_dttm), extract(epoch from queued_dttm), "
                "extract(epoch from end_date) from task_instance where dag_id = %s and "
                "state = 'success' and end_date >= to_timestamp(%s) order by end_date limit 1",
                (dag_id, since),
            )
            row = cursor.fetchone()
        return None if row is None else (float(row[0]), float(row[1]), float(row[2]))


def message(number: int) -> bytes:
    return (
        f"From: Lead {number} <lead{number}@example.org>\r\nTo: info@example.com\r\n"
        f"Subject: Scale inquiry {number}\r\nMessage-ID: <scale-{number}-{time.time_ns()}"
        f"@example.org>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nPrice list, please.\r\n"
    ).encode()


class Arrivals(threading.Thread):
    """APPENDs ``count`` messages, one every ``interval`` s, each to another mailbox."""

    def __init__(self, dovecot: Dovecot, mailboxes: int, count: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.dovecot, self.interval = dovecot, interval
        self.targets = random.Random(mailboxes).sample(range(mailboxes), min(count, mailboxes))
        self.appended: dict[int, float] = {}

    def run(self) -> None:
        next_at = time.monotonic()
        for number, mailbox in enumerate(self.targets):
            time.sleep(max(0.0, next_at - time.monotonic()))
            with self.dovecot.client(f"m{mailbox}") as client:
                self.appended[mailbox] = time.time()
                client.append("INBOX", message(number))
                client.logout()
            next_at += self.interval


def lag_samples(path: Path, start: float, end: float) -> list[float]:
    samples = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            at, late = line.split()
            if start <= float(at) <= end:
                samples.append(float(late))
    return samples


def resumed_tasks(logs: Path) -> tuple[int, int]:
    """Sensor tasks resumed by an event (each logs one "Handed over" line), and how many
    of them found their messages taken by another sensor (and deferred again)."""
    resumed = empty = 0
    for path in logs.rglob("*.log"):
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace")
            resumed += text.count("Handed over ")
            empty += text.count("Handed over 0 message")
    return resumed, empty


def blocked_lines(log: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return log.read_text(errors="replace").count(BLOCKED)
    return 0


def supervisor_rates(path: Path, start: float, end: float) -> tuple[float, float]:
    """The triggerer supervisor's loop iterations and request frames per second between
    ``start`` and ``end`` (from :mod:`benchmarks.supervisor_patch`'s probe file)."""
    rows = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            at, iterations, frames = line.split()
            if start <= float(at) <= end:
                rows.append((float(at), int(iterations), int(frames)))
    if len(rows) < 2 or rows[-1][0] <= rows[0][0]:
        return math.nan, math.nan
    seconds = rows[-1][0] - rows[0][0]
    return (rows[-1][1] - rows[0][1]) / seconds, (rows[-1][2] - rows[0][2]) / seconds


def wait_for_sensors(
    database: Database, deployment: Deployment, sensors: int, timeout: float
) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    last_print = 0.0
    counts = (0, 0, 0)
    while time.monotonic() < deadline:
        for name, process in deployment.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{deployment.log_tail(name)}")
        counts = database.counts()
        deferred, _succeeded, assigned = counts
        if deferred >= sensors and assigned >= sensors + 1:
            return counts
        if time.monotonic() - last_print > 30:
            print(f"  {deferred}/{sensors} deferred, {assigned} triggers assigned", flush=True)
            last_print = time.monotonic()
        time.sleep(2)
    raise RuntimeError(f"only {counts[0]} of {sensors} sensors deferred within {timeout:.0f} s")


def wait_for_sessions(triggerer: int, port: int, mailboxes: int, timeout: float) -> float:
    """Seconds until the triggerer holds a session per mailbox (every trigger polled).

    After ``timeout`` the window starts anyway; the table shows the sessions held.
    """
    started = time.monotonic()
    last_print = started
    while (held := sessions(triggerer, port)) < mailboxes:
        if time.monotonic() - started > timeout:
            print(f"  only {held} of {mailboxes} IMAP sessions after {timeout:.0f} s", flush=True)
            break
        if time.monotonic() - last_print > 30:
            print(f"  {held}/{mailboxes} IMAP sessions", flush=True)
            last_print = time.monotonic()
        time.sleep(2)
    return time.monotonic() - started


def measure(sensors: int, args: argparse.Namespace) -> dict[str, Any]:
    """One deployment of ``sensors`` deferred sensors: start-up, then the steady window."""
    mailboxes = sensors // SENSORS_PER_MAILBOX
    bin_dir = server_binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server is not installed (apt-get install postgresql).")
    with contextlib.ExitStack() as stack:
        workdir, certificate = stack.enter_context(bench_workdir())
        users = {f"m{number}": PASSWORD for number in range(mailboxes)}
        dovecot = Dovecot(
            workdir / "dovecot", certificate, users=users, extra_config=dovecot_limits(mailboxes)
        ).start()
        stack.callback(dovecot.stop)
        postgres = Postgres(bin_dir).start()
        stack.callback(postgres.stop)
        connections = dict(
            connection_variable(
                f"scale_m{number}",
                "mail_imap",
                port=dovecot.imaps_port,
                login=f"m{number}",
                password=PASSWORD,
                security="ssl",
                timeout=30,
            )
            for number in range(mailboxes)
        )
        home = workdir / "airflow"
        home.mkdir()
        lag_file = workdir / "lag.txt"
        probe_file = workdir / "supervisor.txt"
        settings = {
            "SCALE_SUPERVISOR_PROBE": str(probe_file),
            "SCALE_SUPERVISOR_DRAIN": "1" if args.drain_supervisor else "0",
            "SCALE_MAILBOXES": str(mailboxes),
            "SCALE_SENSORS_PER_MAILBOX": str(SENSORS_PER_MAILBOX),
            "SCALE_LAG_FILE": str(lag_file),
            # The connections name no certificate (1,000 copies would not fit in the
            # environment): the system trust store is this benchmark's certificate.
            "SSL_CERT_FILE": str(certificate.cert_path),
            "SCALE_START_FROM_TRIGGER": "1" if args.start_from_trigger else "0",
            "AIRFLOW__TRIGGERER__CAPACITY": str(sensors + 10),
            "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": "500",
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            # A loaded api-server answers a task's calls in more than the default 5 s.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "900",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "900",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__SCHEDULER__MAX_DAGRUNS_TO_CREATE_PER_LOOP": "50",
        }
        deployment = Deployment(
            home,
            postgres.url,
            connections,
            [DAGS],
            triggerers=1,
            settings=settings,
            pythonpath=[SUPERVISOR_PATCH],
        )
        print(f"N={sensors}: starting Airflow ({mailboxes} mailboxes) ...", flush=True)
        started = time.monotonic()
        deployment.start()
        stack.callback(deployment.stop)
        database = Database(postgres)
        components = [process.pid for process in deployment.processes.values()]
        triggerer = deployment.processes["triggerer-1"].pid
        counts = wait_for_sensors(database, deployment, sensors, args.ramp_timeout)
        startup = time.monotonic() - started
        print(f"  all {sensors} deferred after {startup:.0f} s", flush=True)
        opening_from = time.time()
        opened = wait_for_sessions(triggerer, dovecot.imaps_port, mailboxes, args.sessions_timeout)
        opening_rates = supervisor_rates(probe_file, opening_from - 5, time.time() + 5)
        startup_cpu = cpu_seconds(components)
        held = sessions(triggerer, dovecot.imaps_port)
        print(f"  {held} IMAP sessions after {opened:.0f} s more; settling", flush=True)
        time.sleep(2 * DELAY)

        log = home / "triggerer-1.log"
        blocked_before = blocked_lines(log)
        arrivals = Arrivals(dovecot, mailboxes, args.arrivals, args.window / args.arrivals)
        cpu_before, wall_start = cpu_seconds([triggerer]), time.time()
        rss, held, loads = [], [], []
        arrivals.start()
        while time.time() - wall_start < args.window:
            time.sleep(1.0)
            rss.append(rss_bytes(triggerer))
            held.append(sessions(triggerer, dovecot.imaps_port))
            loads.append(os.getloadavg()[0])
        wall_end = time.time()
        cpu = cpu_seconds([triggerer]) - cpu_before
        blocked = blocked_lines(log) - blocked_before
        arrivals.join()
        lags = lag_samples(lag_file, wall_start, wall_end)
        window_rates = supervisor_rates(probe_file, wall_start, wall_end)
        steps = collect_latencies(database, arrivals, timeout=4 * DELAY + 160)
        latencies = steps["success"]
        resumed, resumed_empty = resumed_tasks(home / "logs")
        result = {
            "sensors": sensors,
            "mailboxes": mailboxes,
            "startup_s": startup,
            "startup_cpu_s": startup_cpu,
            "sessions_open_s": opened,
            "deferred_at_start": counts[0],
            "triggerer_cpu_percent": 100 * cpu / (wall_end - wall_start),
            "lag_p50_ms": percentile(lags, 0.50),
            "lag_p99_ms": percentile(lags, 0.99),
            "lag_max_ms": max(lags, default=math.nan),
            "lag_samples": len(lags),
            "blocked_lines": blocked,
            "blocked_lines_total": blocked_lines(log),
            "rss_mb_max": max(rss) / 2**20,
            "rss_mb_end": rss[-1] / 2**20,
            "imap_sessions_max": max(held),
            "imap_sessions_end": held[-1],
            "arrivals": len(arrivals.appended),
            "delivered": len(latencies),
            "resumed": resumed,
            "resumed_empty": resumed_empty,
            "latency_p50_s": percentile(latencies, 0.50),
            "latency_p99_s": percentile(latencies, 0.99),
            "latency_max_s": max(latencies, default=math.nan),
            "event_p50_s": percentile(steps["event"], 0.50),
            "event_p99_s": percentile(steps["event"], 0.99),
            "queued_p50_s": percentile(steps["queued"], 0.50),
            "queued_p99_s": percentile(steps["queued"], 0.99),
            "start_from_trigger": args.start_from_trigger,
            "drain_supervisor": args.drain_supervisor,
            "supervisor_iterations_per_s_opening": opening_rates[0],
            "supervisor_frames_per_s_opening": opening_rates[1],
            "supervisor_iterations_per_s_window": window_rates[0],
            "supervisor_frames_per_s_window": window_rates[1],
            "load_avg_max": max(loads),
            "load_avg_mean": sum(loads) / len(loads),
            "dovecot_processes": len(tree(dovecot.process.pid)) if dovecot.process else 0,
        }
        print(f"  {json.dumps(result)}", flush=True)
        if args.keep_logs:
            keep = Path(tempfile.mkdtemp(prefix=f"scale-{sensors}-logs-"))
            for name in deployment.processes:
                shutil.copy(home / f"{name}.log", keep)
            shutil.copy(dovecot.log_path, keep)
            shutil.copytree(home / "logs", keep / "tasks")
            print(f"  logs kept in {keep}", flush=True)
        return result


def collect_latencies(
    database: Database, arrivals: Arrivals, timeout: float
) -> dict[str, list[float]]:
    """Seconds from each APPEND to its mailbox's first sensor success, and the steps.

    ``event``: APPEND to the trigger's event in the database; ``queued``: to the
    scheduler queueing the task; ``success``: to the task's end. Waits for stragglers.
    """
    found: dict[int, tuple[float, float, float]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < len(arrivals.appended):
        for mailbox, appended in arrivals.appended.items():
            if mailbox not in found:
                success = database.first_success(f"scale_m{mailbox}", appended)
                if success is not None:
                    found[mailbox] = tuple(at - appended for at in success)  # type: ignore[assignment]
        time.sleep(1)
    steps = list(found.values())
    return {
        name: sorted(step[index] for step in steps)
        for index, name in enumerate(("event", "queued", "success"))
    }


def table(results: list[dict[str, Any]]) -> str:
    header = [
        "sensors (mailboxes)",
        "triggerer CPU (% of 1 core)",
        "loop lag p50 / p99 / max (ms)",
        '"blocked" lines',
        "triggerer RSS (MB)",
        "IMAP sessions",
        "arrival → event p50 / p99 (s)",
        "arrival → queued p50 / p99 (s)",
        "arrival → success p50 / p99 / max (s)",
        "sensor tasks resumed (of them found nothing)",
        "delivered / sent",
        "start-up: all deferred + all sessions (s), CPU (s)",
        "supervisor iterations / frames per s (opening; window)",
        "load avg (mean / max)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for row in results:
        cells = [
            f"{row['sensors']:,} ({row['mailboxes']:,})"
            + (", scheduler-deferred" if row["start_from_trigger"] else "")
            + (", PATCHED supervisor (benchmark only)" if row.get("drain_supervisor") else ""),
            f"{row['triggerer_cpu_percent']:.0f}",
            f"{row['lag_p50_ms']:.0f} / {row['lag_p99_ms']:.0f} / {row['lag_max_ms']:.0f}",
            f"{row['blocked_lines']} ({row['blocked_lines_total']} since start)",
            f"{row['rss_mb_max']:.0f}",
            f"{row['imap_sessions_max']}",
            f"{row['event_p50_s']:.1f} / {row['event_p99_s']:.1f}",
            f"{row['queued_p50_s']:.1f} / {row['queued_p99_s']:.1f}",
            f"{row['latency_p50_s']:.1f} / {row['latency_p99_s']:.1f} / {row['latency_max_s']:.1f}",
            f"{row.get('resumed', '?')} ({row.get('resumed_empty', '?')} found it taken)",
            f"{row['delivered']} / {row['arrivals']}",
            f"{row['startup_s']:.0f} + {row['sessions_open_s']:.0f}, {row['startup_cpu_s']:.0f}",
            f"{row['supervisor_iterations_per_s_opening']:.1f} / "
            f"{row['supervisor_frames_per_s_opening']:.1f}; "
            f"{row['supervisor_iterations_per_s_window']:.1f} / "
            f"{row['supervisor_frames_per_s_window']:.1f}",
            f"{row['load_avg_mean']:.1f} / {row['load_avg_max']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def enough_files() -> Iterator[None]:
    """One socket per mailbox in the triggerer, one file per IMAP process in Dovecot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", default="500,1000", help="sizes, comma-separated")
    parser.add_argument("--window", type=float, default=90.0, help="steady window (s)")
    parser.add_argument("--arrivals", type=int, default=18, help="messages in the window")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor slots")
    parser.add_argument("--ramp-timeout", type=float, default=3600.0, help="all deferred (s)")
    parser.add_argument("--sessions-timeout", type=float, default=1200.0, help="all sessions (s)")
    parser.add_argument(
        "--start-from-trigger",
        action="store_true",
        help="the scheduler defers the sensors (start_from_trigger); no worker starts them",
    )
    parser.add_argument(
        "--drain-supervisor",
        action="store_true",
        help="BENCHMARK ONLY: patch Airflow's triggerer supervisor to serve every waiting "
        "request per loop iteration (benchmarks/supervisor_patch.py), to show what the "
        "provider does once Airflow's one-request-per-iteration limit is lifted",
    )
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that Airflow, PostgreSQL and Dovecot are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = []
    with enough_files():
        for sensors in [int(size) for size in args.sensors.split(",")]:
            results.append(measure(sensors, args))
    print(
        f"\n### Deferred ReceiveEmailSensors in one real `airflow triggerer` (delay {DELAY:g} s, "
        f"{SENSORS_PER_MAILBOX} per mailbox, IMAP implicit TLS; window {args.window:g} s, "
        f"{args.arrivals} arrivals)\n"
    )
    print(table(results))
    print(f"\n{machine_note()}")
    print("\nRaw results (JSON):")
    for result in results:
        print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
