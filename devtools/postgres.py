"""A throw-away PostgreSQL cluster on 127.0.0.1 for the deployment suite and benchmarks.

Debian's server binaries (``apt-get install postgresql``), a fresh ``initdb`` in a
temporary directory, ``pg_ctl`` on a free port; as root the cluster runs as the
``postgres`` user (PostgreSQL refuses to run as root). ``stop()`` shuts it down.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.certs import free_port


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    return float(Path(path).parent.parent.name)


@dataclass
class Postgres:
    """``start()`` a cluster with database ``airflow`` (user ``airflow``, trust auth)."""

    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mail-deploy-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=airflow dbname=airflow"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one SQL statement (psycopg2, which Airflow's PostgreSQL support needs)."""
        import psycopg2

        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd="/")

    def start(self) -> Postgres:
        self.root.chmod(0o755)
        data = self.root / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "pg.log"),
            "-w",
            "start",
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "airflow")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
