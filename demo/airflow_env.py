"""A private, throw-away Airflow for the demo: its own home, SQLite database and settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from devtools.processes import stop_process_group

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "dags_examples"
# Fixed so the demo's encrypted connection passwords stay readable by every process of
# one run (and by a re-started run on a kept home, with --keep). Not a secret: the
# database it protects is thrown away.
FERNET_KEY = "pjVB0eSZ5lBnbqRWSiyJXv2Yx9xGkQNBTzWNTnW5sOI="
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


def airflow_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment for every Airflow process of the demo.

    The caller's own ``AIRFLOW__*`` / ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` variables are
    dropped: the demo must not read, or write into, the user's real Airflow.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_HOME"))
    }
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # Received attachments go to a per-run folder under the system temp directory:
            # point it into the demo's home so nothing is left behind in /tmp.
            "TMPDIR": str(tmp),
            "PYTHONPATH": os.pathsep.join(
                [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
    )
    env.update(settings)
    return env


def connection_env(connections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables (JSON) for connections that live only in the env."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(c) for conn_id, c in connections.items()}


def spawn_logged(module: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m <module...>`` from the repository, its output appended to ``log_path``.

    In its own process group: Ctrl-C reaches the demo, which then stops the group (the
    process and whatever it started, such as task processes) with stop_process_group.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", *module],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_airflow(args: list[str], env: dict[str, str], log_path: Path, timeout: float = 300) -> None:
    """Run one ``airflow`` CLI command, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        log.write(f"\n$ airflow {' '.join(args)}\n".encode())
    process = spawn_logged(["airflow", *args], env, log_path)
    try:
        code = process.wait(timeout=timeout)
    finally:
        stop_process_group(process)
    if code != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed (exit {code}):\n{tail(log_path)}")


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, for error messages."""
    if not path.exists():
        return ""
    return path.read_text(errors="replace")[-chars:]


_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Exit|Timeout\w*|Failure): .+")


def errors_in(path: Path, limit: int = 5) -> str:
    """The exception lines of a log (``MailAuthError: ... check User Name and Password``).

    Airflow's log around a failed task is long; the provider's own error messages say
    what went wrong and what to change, so they are what the console shows.
    """
    if not path.exists():
        return ""
    found: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if _ERROR_LINE.match(line) and line not in found:
            found.append(line)
    return "\n".join(f"  {line}" for line in found[-limit:])
