"""`make demo`: the reference integration end to end, then what each lead received."""

from __future__ import annotations

import json
import subprocess
import textwrap
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from demo.airflow_env import (
    airflow_env,
    connection_env,
    errors_in,
    run_airflow,
    spawn_logged,
    tail,
)
from demo.samples import sample_inquiries
from demo.servers import MAIL_DOMAIN, MailServers
from demo.session import DemoError, DemoSession, say, step
from devtools.processes import stop_process_group

DAG_ID = "obtain_info_emails_to_leads"
# Not the DAG's defaults: the run's params choose the connections, as a user's would.
IMAP_CONN_ID = "demo_info_imap"
SMTP_CONN_ID = "demo_smtp"
LEADS_EMAIL = f"leads@{MAIL_DOMAIN}"
STEPS = 5
DAG_TIMEOUT = 240
TASK_ORDER = ["obtain_info_emails", "map_to_leads", "send_emails_to_leads"]


def run(session: DemoSession) -> None:
    root = session.root
    step(1, STEPS, "Starting local mail servers (Dovecot IMAP/POP3, SMTP) on 127.0.0.1...")
    servers = MailServers.start(root / "mail")
    session.callback(servers.stop)
    say(
        f"      IMAP  localhost:{servers.dovecot.imaps_port} (TLS)    "
        f"SMTP  localhost:{servers.smtp.port} (STARTTLS + AUTH)"
    )
    say(f"      mailboxes: info@{MAIL_DOMAIN}, leads@{MAIL_DOMAIN}; a throw-away certificate")

    home = root / "airflow"
    log_path = root / "airflow.log"
    step(2, STEPS, f"Preparing a private Airflow (SQLite, airflow db migrate) in {home}...")
    env = airflow_env(home)
    run_airflow(["db", "migrate"], env, log_path)

    step(3, STEPS, f"Creating connections and putting sample mail into info@{MAIL_DOMAIN}...")
    connections = servers.connections(IMAP_CONN_ID, SMTP_CONN_ID)
    env.update(connection_env(connections))
    say(f"      {IMAP_CONN_ID} (mail_imap, ssl), {SMTP_CONN_ID} (mail_smtp, starttls)")
    samples = sample_inquiries()
    servers.dovecot.deliver("info", [m.as_bytes() for m in samples])
    for message in samples:
        attached = [p.get_filename() for p in message.iter_attachments()]
        note = f"  [attachment: {', '.join(map(str, attached))}]" if attached else ""
        html_only = " [HTML only]" if message.get_content_type() == "text/html" else ""
        say(f"      - {message['From']}: {message['Subject']}{html_only}{note}")

    step(4, STEPS, f"Running DAG {DAG_ID} (receive -> map -> send) with dag.test()...")
    say(f"      Airflow's own log: {log_path}")
    run_conf = {
        "imap_conn_id": IMAP_CONN_ID,
        "smtp_conn_id": SMTP_CONN_ID,
        "leads_email": LEADS_EMAIL,
    }
    result = run_dag(session, env, log_path, run_conf)
    tasks = result["tasks"]
    for task_id in sorted(tasks, key=lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else 9):
        task = tasks[task_id]
        say(f"      {task_id}: {task['state']}{_task_note(task_id, task)}")
    failed = {t: v["state"] for t, v in tasks.items() if v["state"] != "success"}
    if failed or len(tasks) != len(TASK_ORDER):
        raise DemoError(
            f"the DAG run did not succeed ({failed}).\n{errors_in(log_path)}\n"
            f"Airflow's log: {log_path}"
        )

    step(5, STEPS, f"What the leads received (the inbox of {LEADS_EMAIL}):")
    received = servers.inbox("leads")
    for number, message in enumerate(received, 1):
        _print_message(number, len(received), message)
    expected = len(samples)
    if len(received) != expected:
        raise DemoError(f"the leads received {len(received)} email(s), expected {expected}.")
    say()
    say(f"Demo finished in {session.elapsed:.0f} s")


def run_dag(
    session: DemoSession, env: dict[str, str], log_path: Path, run_conf: dict[str, str]
) -> dict[str, Any]:
    """Run the DAG in a child process whose output goes to the log file; its JSON result."""
    result_path = session.root / "dag-result.json"
    process = spawn_logged(["demo.run_dag", str(result_path), json.dumps(run_conf)], env, log_path)
    session.callback(stop_process_group, process)
    try:
        code = process.wait(timeout=DAG_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        raise DemoError(
            f"the DAG run took over {DAG_TIMEOUT} s. Airflow's log: {log_path}"
        ) from err
    if code != 0 or not result_path.exists():
        raise DemoError(
            f"the DAG run stopped with exit code {code}.\n{errors_in(log_path)}\n"
            f"{tail(log_path, 1500)}\nAirflow's log: {log_path}"
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def _task_note(task_id: str, task: dict[str, Any]) -> str:
    value = task.get("return_value")
    if not isinstance(value, list):
        return ""
    if task_id == "obtain_info_emails":
        files = sum(len(record.get("attachments") or []) for record in value)
        return f" ({len(value)} new email(s), {files} attachment(s) saved to disk)"
    if task_id == "map_to_leads":
        return f" ({len(value)} item(s) mapped)"
    return f" ({len(value)} email(s) sent)"


def _print_message(number: int, total: int, message: EmailMessage, lines: int = 5) -> None:
    say()
    say(f"  --- lead email {number}/{total} ---")
    for header in ("From", "To", "Reply-To", "Subject"):
        if message[header]:
            say(f"  {header + ':':<9} {message[header]}")
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    shown = [line.rstrip() for line in text.strip().splitlines() if line.strip()][:lines]
    for line in shown:
        say(f"  | {textwrap.shorten(line, width=92, placeholder=' ...')}")
