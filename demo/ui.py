"""`make demo-ui`: the demo's servers, connections and sample mail behind a running Airflow.

The connections are created in Airflow's database (not only in the environment) so they
show in the UI's connection list, with the Test button enabled. They use the DAGs'
default connection ids, so the example DAGs run with their default params: unpause
``obtain_info_emails_to_leads`` and the sample inquiries reach the leads' inbox.
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from demo.airflow_env import (
    REPO,
    SIMPLE_AUTH_MANAGER,
    airflow_env,
    run_airflow,
    spawn_logged,
    tail,
)
from demo.feed import remove_state, write_state
from demo.samples import sample_inquiries
from demo.servers import MAIL_DOMAIN, USERS, MailServers
from demo.session import DemoError, DemoSession, say, step
from devtools.certs import free_port
from devtools.processes import stop_process_group
from devtools.smtp import SMTP_PASSWORD, SMTP_USER

STEPS = 4
DAG_ID = "obtain_info_emails_to_leads"
READY_TIMEOUT = 180


def run_ui(session: DemoSession, port: int) -> None:
    root = session.root
    step(1, STEPS, "Starting local mail servers (Dovecot IMAP/POP3, SMTP) on 127.0.0.1...")
    servers = MailServers.start(root / "mail", on_delivery=_announce)
    session.callback(servers.stop)
    write_state(servers.smtp.port, servers.certificate.cert_path, SMTP_USER, SMTP_PASSWORD)
    session.callback(remove_state)

    home = root / "airflow"
    log_path = root / "airflow.log"
    port = port if _port_free(port) else free_port()
    url = f"http://127.0.0.1:{port}"
    step(2, STEPS, f"Preparing a private Airflow (SQLite, airflow db migrate) in {home}...")
    env = airflow_env(
        home,
        AIRFLOW__CORE__AUTH_MANAGER=SIMPLE_AUTH_MANAGER,
        # No login page: fine for a throw-away Airflow that listens on 127.0.0.1 only.
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        # Task processes reach the Execution API through this URL.
        AIRFLOW__API__BASE_URL=url,
        # Start with every DAG paused: the user chooses what runs (the asset-watcher
        # example would otherwise compete with the reference DAG for the info inbox).
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        # Airflow warns "Connection schemes (type: mail_imap) shall not contain '_'" on
        # every connection lookup; the types are the provider's contract (docs/logs.md).
        AIRFLOW__LOGGING__NAMESPACE_LEVELS="airflow.models.connection.Connection=ERROR",
        # One api-server worker on SQLite answers the UI and every task: on a busy laptop
        # a task's first call can take longer than the default 5 s, which fails the task.
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="60",
    )
    run_airflow(["db", "migrate"], env, log_path)
    connections = servers.connections(
        "mail_imap_default", "mail_smtp_default", pop3_id="mail_pop3_default"
    )
    connections_file = home / "demo-connections.json"
    connections_file.write_text(json.dumps(connections))
    connections_file.chmod(0o600)
    run_airflow(["connections", "import", "--overwrite", str(connections_file)], env, log_path)
    connections_file.unlink()

    step(3, STEPS, f"Putting sample mail into info@{MAIL_DOMAIN}...")
    samples = sample_inquiries()
    servers.dovecot.deliver("info", [m.as_bytes() for m in samples])
    for message in samples:
        say(f"      - {message['From']}: {message['Subject']}")

    logs = root / "airflow-components"
    step(4, STEPS, f"Starting Airflow (api-server on {url}; logs in {logs})...")
    processes = start_components(session, env, port, logs)
    _wait_ready(processes, url, logs)

    imap, smtp = connections["mail_imap_default"], connections["mail_smtp_default"]
    say()
    say(f"Airflow is ready: {url}")
    say("  Login: none needed (SimpleAuthManager, every visitor is admin; 127.0.0.1 only).")
    say("  Connections (Admin > Connections, each with a Test button):")
    for conn_id, conn in connections.items():
        say(
            f"    {conn_id:<18} {conn['conn_type']:<10} localhost:{conn['port']}  "
            f"{conn['extra']['security']}, user {conn['login']}"
        )
    say(
        f"  Mailboxes (Dovecot, IMAP localhost:{imap['port']} TLS or "
        f"{servers.dovecot.imap_port} STARTTLS): "
        + ", ".join(f"{user}@{MAIL_DOMAIN} / {password}" for user, password in USERS.items())
    )
    say(f"  SMTP localhost:{smtp['port']} (STARTTLS + AUTH, delivers to those mailboxes)")
    say(f"  Server certificate (throw-away): {servers.certificate.cert_path}")
    say()
    say("What to do now:")
    say(f"  1. Open {url}/dags/{DAG_ID} (no login) and read its Docs.")
    say("  2. Unpause it with the toggle at the top (do not press Trigger: the scheduler starts")
    say("     a run every 30 s, one at a time; a triggered run would wait behind it).")
    say(f"     Its first run forwards the 4 sample inquiries to leads@{MAIL_DOMAIN}; each")
    say("     delivery is announced here. Then the next run waits for new mail:")
    say(f"  3. Send more mail to info@{MAIL_DOMAIN} from another terminal in {REPO}:")
    say(f'       {_python()} -m demo send "Question about pricing" "How much for 10 seats?"')
    say("  4. Follow it in the grid view: Obtain Info Emails > Logs says what it waits for")
    say("     and one line per email received; Send Emails to Leads one line per email sent.")
    say("Press Ctrl-C to stop Airflow and the mail servers.")
    while True:
        _check_alive(processes, logs)
        time.sleep(0.5)


def _python() -> str:
    """How to call this interpreter: ``python`` when that is the one on PATH."""
    on_path = shutil.which("python")
    if on_path and Path(on_path).resolve() == Path(sys.executable).resolve():
        return "python"
    return shlex.quote(sys.executable)


def _announce(rcpt: str, raw: bytes) -> None:
    """Called by the SMTP server for each delivered email: show it on the console."""
    message = message_from_bytes(raw, policy=default_policy)
    reply_to = f"  (Reply-To: {message['Reply-To']})" if message["Reply-To"] else ""
    say(f"  -> delivered to {rcpt}: {message['Subject']}{reply_to}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_components(
    session: DemoSession, env: dict[str, str], port: int, logs: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """What ``airflow standalone`` starts, each in its own process group, on 127.0.0.1 only.

    Not ``airflow standalone`` itself: its scheduler and triggerer always serve logs on
    every interface (0.0.0.0:8793 and :8794); ``--skip-serve-logs`` keeps the demo local
    and free of fixed ports. The api-server reads the task logs from the local files.
    """
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "api-server": ["api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, args in commands.items():
        processes[name] = spawn_logged(["airflow", *args], env, logs / f"{name}.log")
        session.callback(stop_process_group, processes[name], 30)
    return processes


def _check_alive(processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            raise DemoError(
                f"airflow {name} exited (code {process.returncode}):\n{tail(logs / f'{name}.log')}"
            )


def _wait_ready(processes: dict[str, subprocess.Popen[bytes]], url: str, logs: Path) -> None:
    """Wait until the UI answers and the reference DAG has been parsed (it shows in the UI)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        _check_alive(processes, logs)
        try:
            with urllib.request.urlopen(f"{url}/api/v2/dags/{DAG_ID}", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise DemoError(f"Airflow did not show DAG {DAG_ID} on {url} within {READY_TIMEOUT} s.")
