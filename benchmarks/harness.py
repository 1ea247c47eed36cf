"""What the network benchmarks share: a private Airflow home, connections, timing, tables.

Airflow reads its configuration when first imported, so :func:`prepare_airflow_home` runs
before anything imports Airflow or the provider (the benchmarks import those lazily).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.connections import connection_variable


def prepare_airflow_home() -> Path:
    """Point Airflow at a throw-away home (no DB needed: connections come from env vars)."""
    home = Path(tempfile.mkdtemp(prefix="mail-provider-bench-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # Hooks log one line per call; at INFO that is noise in the middle of the table.
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return home


def define_connection(
    conn_id: str,
    conn_type: str,
    *,
    port: int,
    login: str,
    password: str,
    host: str = "localhost",
    **extra: Any,
) -> str:
    """Define an Airflow connection through an ``AIRFLOW_CONN_*`` variable; returns its id."""
    name, value = connection_variable(
        conn_id, conn_type, host=host, port=port, login=login, password=password, **extra
    )
    os.environ[name] = value
    return conn_id


def define_imap_connection(
    conn_id: str, *, port: int, login: str, password: str, certificate_pem: str, timeout: int
) -> str:
    """A ``mail_imap`` connection with implicit TLS trusting the benchmark's certificate."""
    return define_connection(
        conn_id,
        "mail_imap",
        port=port,
        login=login,
        password=password,
        security="ssl",
        server_certificate=certificate_pem,
        timeout=timeout,
    )


@dataclass
class Contender:
    """One way of doing the job on a network; ``run`` does it once, setup included.

    ``verify``, when given, runs after each timed ``run`` (untimed) and raises if the job
    was not done completely.
    """

    name: str
    run: Callable[[str], None]
    is_floor: bool = False
    verify: Callable[[], None] | None = None
    #: seconds per network setting
    times: dict[str, list[float]] = field(default_factory=dict)


def measure(
    contenders: Sequence[Contender],
    networks: Sequence[str],
    repeat: int,
    progress: Callable[[str], None] = print,
) -> None:
    """Time every contender ``repeat`` times on every network, interleaved.

    Rounds go contender after contender, so slow drift on the machine (another process,
    a warm cache) spreads over all of them instead of favouring whoever ran first. Each
    contender runs once untimed on the first network before anything is timed: imports,
    the server's caches.
    """
    for contender in contenders:
        contender.run(networks[0])
        if contender.verify is not None:
            contender.verify()
    for network in networks:
        for contender in contenders:
            contender.times[network] = []
        for round_number in range(repeat):
            for contender in contenders:
                started = time.perf_counter()
                contender.run(network)
                contender.times[network].append(time.perf_counter() - started)
                if contender.verify is not None:
                    contender.verify()
            progress(f"  {network}: round {round_number + 1}/{repeat} done")


def markdown_table(
    contenders: Sequence[Contender], networks: Sequence[str], *, transpose: bool = False
) -> str:
    """Median seconds and the ratio to the floor, one column pair per network.

    ``transpose``: one row per network and one column per contender, each cell
    ``seconds (x floor)``; easier to read with many networks.
    """
    floor = next(contender for contender in contenders if contender.is_floor)

    def cell(contender: Contender, network: str) -> tuple[str, str]:
        median = statistics.median(contender.times[network])
        return f"{median:.3f}", f"{median / statistics.median(floor.times[network]):.2f}"

    if transpose:
        header = ["network"] + [contender.name for contender in contenders]
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(contenders)) + "|",
        ]
        for network in networks:
            cells = ["{} s ({}x)".format(*cell(contender, network)) for contender in contenders]
            lines.append("| " + " | ".join([network, *cells]) + " |")
        return "\n".join(lines)
    header = ["contender"]
    for network in networks:
        header += [f"{network} (s)", f"{network} (x floor)"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for contender in contenders:
        row = [contender.name]
        for network in networks:
            row += cell(contender, network)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def machine_note() -> str:
    """One sentence on how busy the machine was: the benchmarks may share it."""
    load = os.getloadavg()[0]
    return f"Machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end of the run."


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def wan_name(delay: float) -> str:
    """The name of a simulated link with ``delay`` seconds each way: ``20 ms RTT``."""
    return f"{2 * delay * 1000:g} ms RTT"


def network_key(network: str) -> str:
    """A network's name as part of a connection id: ``TLS, 20 ms RTT`` -> ``tls20msrtt``."""
    return "".join(char for char in network if char.isalnum()).lower()


def status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``: the peak RSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


CHILD_RESULT = "BENCH-RESULT "


def report_to_parent(result: dict[str, Any]) -> None:
    """In a child started by :func:`run_child`: hand ``result`` to the parent."""
    print(CHILD_RESULT + json.dumps(result), flush=True)


def run_child(module: str, *args: str) -> dict[str, Any]:
    """``python -m module args`` in a fresh process (its memory is its own); its result."""
    command = [sys.executable, "-m", module, *args]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith(CHILD_RESULT))
    result: dict[str, Any] = json.loads(line.removeprefix(CHILD_RESULT))
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


#: Where cProfile attributes ``receive``'s time: row -> (file path part, function name
#: part, cumulative?). Builtins (``~``) count their own time, functions their cumulative.
PROFILE_ROWS = {
    "socket and TLS reads/writes (waiting for the wire)": ("~", "socket", False),
    # read_fetch, and within it imapclient's parser for answers it leaves to it.
    "reading the FETCH answers": ("provider_mail/mail/imap_fetch", "read_fetch", True),
    "`build_record` (parse into the record)": ("airflow_provider_mail/mail/", "build_record", True),
    "writing attachment files": ("airflow_provider_mail/mail/attachments", "save", True),
}


def profile_rows(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of the :data:`PROFILE_ROWS` functions in ``stats``.

    Only the public ``receive`` runs, so this reads the same however the hook is built
    inside (cProfile's own overhead inflates the Python rows).
    """
    rows = dict.fromkeys(PROFILE_ROWS, 0.0)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (path, _line, function), (_cc, _nc, own, cumulative, _callers) in raw.items():
        for row, (part, name, whole) in PROFILE_ROWS.items():
            if part in path and name in function.lower():
                rows[row] += cumulative if whole else own
    return rows
