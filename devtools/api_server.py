"""A throw-away ``airflow api-server`` (UI + REST API) for browser tests.

Its own AIRFLOW_HOME and SQLite database, SimpleAuthManager with every user an admin (no
login page; the REST API answers without a token), the Test button enabled. Listens on
127.0.0.1 only and runs in its own process group, which ``stop()`` ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.certs import free_port
from devtools.processes import stop_process_group

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


@dataclass
class ApiServer:
    """One ``airflow api-server``; ``start()`` it, ``stop()`` it, call its REST API."""

    home: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "api-server.log"

    def listen_args(self) -> list[str]:
        return ["-H", "127.0.0.1", "-p", str(self.port), "-w", "1"]

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        dags = self.home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__API__BASE_URL": self.base_url,
            }
        )
        return env

    def start(self, timeout: float = 90) -> ApiServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "api-server", *self.listen_args()],
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(self._failure("exited"))
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v2/version", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        raise RuntimeError(self._failure(f"did not answer within {timeout:.0f} s"))

    def _failure(self, what: str) -> str:
        log = self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""
        return f"airflow api-server {what}:\n{log}"

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process_group(self.process, timeout=15)
        self.process = None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API (``/api/v2/...``); returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/api/v2/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(
                f"{method} {path} -> {err.code}: {err.read().decode(errors='replace')}"
            ) from err
        return json.loads(payload) if payload else None
