"""The provider as Airflow sees it: registration and ``airflow connections test``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from devtools.certs import Certificate
from devtools.connections import USERS
from devtools.dovecot import Dovecot


def _airflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _json_output(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    # Airflow 3.0 logs plugin set-up lines on stdout before the JSON, which is the last line.
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, result.stdout + result.stderr
    parsed: list[dict[str, str]] = json.loads(lines[-1])
    return parsed


def test_airflow_lists_the_provider_and_its_connection_types(airflow_db: object) -> None:
    providers = _airflow("providers", "list", "-o", "json")
    assert providers.returncode == 0, providers.stderr
    names = [p["package_name"] for p in _json_output(providers)]
    assert "airflow-provider-mail" in names
    hooks = _airflow("providers", "hooks", "-o", "json")
    by_type = {h["connection_type"]: h for h in _json_output(hooks)}
    assert by_type["mail_imap"]["class"] == "airflow_provider_mail.hooks.imap.ImapHook"
    assert by_type["mail_pop3"]["class"] == "airflow_provider_mail.hooks.pop3.Pop3Hook"
    assert by_type["mail_smtp"]["class"] == "airflow_provider_mail.hooks.smtp.SmtpHook"


def test_connections_test_prints_the_clear_sentence(
    airflow_db: object, dovecot: Dovecot, certificate: Certificate
) -> None:
    def conn(password: str) -> str:
        return json.dumps(
            {
                "conn_type": "mail_imap",
                "host": "localhost",
                "port": dovecot.imaps_port,
                "login": "info",
                "password": password,
                "extra": {"security": "ssl", "server_certificate": certificate.pem},
            }
        )

    good = _airflow(
        "connections", "test", "cli_imap", env={"AIRFLOW_CONN_CLI_IMAP": conn(USERS["info"])}
    )
    assert "Connection success!" in good.stdout, good.stdout + good.stderr

    bad = _airflow(
        "connections", "test", "cli_imap", env={"AIRFLOW_CONN_CLI_IMAP": conn("s3cret-typo")}
    )
    assert "Connection failed!" in bad.stdout
    assert (
        "rejected the user name 'info' or its password; check User Name and Password." in bad.stdout
    )
    assert "s3cret-typo" not in bad.stdout + bad.stderr
