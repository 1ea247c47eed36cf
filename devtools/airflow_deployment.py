"""A real Airflow deployment for the suite and the benchmarks: PostgreSQL, api-server,
scheduler, dag-processor, one or more triggerers (two by default) and either the
LocalExecutor or the CeleryExecutor with two Celery workers (on a Redis broker), each
component its own process (group), as in production. Connections come from
``AIRFLOW_CONN_*`` variables given to every component.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devtools.api_server import SIMPLE_AUTH_MANAGER
from devtools.certs import free_port
from devtools.processes import stop_process_group

REPO = Path(__file__).resolve().parent.parent
# No log servers: they listen on every interface (and two triggerers on one port); the
# task logs stay on this machine's disk anyway.
COMPONENTS = {
    "api-server": ["api-server", "-H", "127.0.0.1", "-w", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}
TRIGGERER = ["triggerer", "--skip-serve-logs"]
CELERY_WORKERS = ("worker-1", "worker-2")
# Airflow's default (300 s) is how long a task whose worker died stays "running" before
# the scheduler fails it into its retry; the Celery variant kills a worker and waits for that.
CELERY_HEARTBEAT_TIMEOUT = "45"


@dataclass
class Deployment:
    """``start()`` every component against ``database_url``; ``stop()`` them all."""

    home: Path
    database_url: str
    connections: dict[str, str]
    dags: list[Path]
    executor: str = "LocalExecutor"
    broker_url: str | None = None
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: ``triggerer-1``, ``triggerer-2``...
    triggerers: int = 2
    #: Put before the repository on every component's ``PYTHONPATH`` (the suite's fault
    #: injection).
    pythonpath: list[Path] = field(default_factory=list)
    #: The triggerers' ``[core] hostname_callable``; it reads the component's name from
    #: ``MAIL_DEPLOYMENT_COMPONENT``, so that the ``job`` table tells them apart.
    triggerer_hostname_callable: str | None = None
    #: More environment for every component (Airflow settings), applied last.
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def components(self) -> dict[str, list[str]]:
        """Every process to run, by name: ``COMPONENTS``, the triggerers, Celery workers."""
        triggerers = {f"triggerer-{number}": TRIGGERER for number in range(1, self.triggerers + 1)}
        if self.executor != "CeleryExecutor":
            return {**COMPONENTS, **triggerers}
        workers = {
            name: ["celery", "worker", "--celery-hostname", name, "--skip-serve-logs", "-c", "2"]
            for name in CELERY_WORKERS
        }
        return {**COMPONENTS, **triggerers, **workers}

    @property
    def pause_file(self) -> Path:
        return self.pause_point("hand-over")

    def pause_point(self, point: str, dag_id: str | None = None) -> Path:
        """The file that, while it exists, pauses task processes at ``point`` (of every DAG,
        or of ``dag_id``'s); see ``tests/deployment/inject/sitecustomize.py``. The paused
        process writes its id to ``<file>.pid``."""
        return self.home / (f"pause-{point}-{dag_id}" if dag_id else f"pause-{point}")

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "MAIL_TESTS_"))
        }
        base_url = f"http://127.0.0.1:{self.port}"
        env.update(self.connections)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__FERNET_KEY": "o7sZrV9bKJmXQ3tKcUcE3mG9yRj1z0tQ2pGq5v2mYxA=",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
                # Airflow's 5 s is too short on a busy 2-core machine: a task's first call
                # (PATCH /run) took 5.8 s in CI, the client's retry got 400 (already
                # running), and the try stayed "running" until the heartbeat timeout
                # (docs/deployment.md). Airflow 3.1.1 and later read this.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                "AIRFLOW__API__BASE_URL": base_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__SECRET_KEY": self.secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self.secret,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_PROVIDER_MAIL_LOCK_DIR": str(self.home / "locks"),
                "MAIL_DEPLOYMENT_PAUSE_FILE": str(self.pause_file),
                "PYTHONPATH": os.pathsep.join([*map(str, self.pythonpath), str(REPO)]),
            }
        )
        if self.executor == "CeleryExecutor":
            assert self.broker_url, "The CeleryExecutor needs a broker_url (Redis)."
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.database_url}",
                    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": (
                        CELERY_HEARTBEAT_TIMEOUT
                    ),
                }
            )
        env.update(self.settings)
        return env

    def start(self, timeout: float = 180) -> Deployment:
        (self.home / "dags").mkdir(parents=True, exist_ok=True)
        for dag in self.dags:
            shutil.copy(dag, self.home / "dags" / dag.name)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.environment(),
            cwd=self.home,
            check=True,
            capture_output=True,
            timeout=600,
        )
        # The API server first: tasks and triggers reach Airflow only through it.
        self._spawn("api-server", [*COMPONENTS["api-server"], "-p", str(self.port)], "wb")
        self._wait_for_api(timeout)
        for name, args in self.components.items():
            if name != "api-server":
                self._spawn(name, args, "wb")
        return self

    def _spawn(self, name: str, args: list[str], mode: str) -> None:
        env = self.environment()
        if name.startswith("triggerer") and self.triggerer_hostname_callable:
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = self.triggerer_hostname_callable
            env["MAIL_DEPLOYMENT_COMPONENT"] = name
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            cwd=self.home,
            stdout=(self.home / f"{name}.log").open(mode),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_for_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.log_tail(name)}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/version"):
                    return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"api-server did not answer:\n{self.log_tail('api-server')}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-chars:]

    def kill(self, name: str) -> None:
        """SIGKILL a component and everything it started, as an OOM kill or a lost node would.

        Airflow's task supervisor puts each task process in a group of its own, so the
        component's group alone would leave the task running: its descendants are killed too.
        """
        process = self.processes[name]
        descendants = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        process.wait(timeout=10)

    def component_running(self, pid: int) -> str:
        """The name of the component whose process started process ``pid``."""
        ancestors = {parent.pid for parent in psutil.Process(pid).parents()}
        for name, process in self.processes.items():
            if process.pid in ancestors and process.poll() is None:
                return name
        raise AssertionError(f"No running component started process {pid}.")

    def restart(self, name: str) -> None:
        self._spawn(name, self.components[name], "ab")

    def stop(self) -> None:
        # Task processes sit in groups of their own: end any that outlive their component.
        descendants = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in self.processes.values():
            stop_process_group(process, timeout=10)
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
