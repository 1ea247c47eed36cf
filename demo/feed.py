"""``python -m demo send SUBJECT [TEXT]``: one more email into the running ``make demo-ui``.

``make demo-ui`` writes where its servers are to :data:`STATE_FILE` (and removes it when
it stops); ``send`` reads it and sends the email over the demo's SMTP server (STARTTLS,
AUTH, the throw-away certificate verified) to info@example.com, as a mail client would.
The server delivers it into the inbox the example DAG watches.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from demo.servers import MAIL_DOMAIN
from demo.session import DemoError

STATE_FILE = Path(tempfile.gettempdir()) / "mail-provider-demo-ui.json"
DEFAULT_SENDER = "Sam Sender <sam@example.org>"


def write_state(smtp_port: int, certificate: Path, login: str, password: str) -> Path:
    """Tell later ``python -m demo send`` calls where this demo's SMTP server is."""
    state = {"smtp_port": smtp_port, "certificate": str(certificate), "login": login}
    STATE_FILE.write_text(json.dumps({**state, "password": password}))
    STATE_FILE.chmod(0o600)
    return STATE_FILE


def remove_state() -> None:
    STATE_FILE.unlink(missing_ok=True)


def send(subject: str, text: str = "", sender: str | None = None, to: str = "info") -> str:
    """Send one email to ``to``@example.com through the running demo; what was sent."""
    state = _read_state()
    sender = sender or DEFAULT_SENDER
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"{to}@{MAIL_DOMAIN}"
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=MAIL_DOMAIN)
    message.set_content(text or f"{subject}\n\n(sent with python -m demo send)")
    context = ssl.create_default_context(cafile=state["certificate"])
    try:
        with smtplib.SMTP("localhost", int(state["smtp_port"]), timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login(state["login"], state["password"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as err:
        raise DemoError(
            f"could not send through the demo's SMTP server on localhost:{state['smtp_port']} "
            f"({err}); is make demo-ui still running?"
        ) from err
    return f'Sent "{subject}" from {sender} to {message["To"]}.'


def _read_state() -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        raise DemoError(
            "no running make demo-ui found; start it in another terminal first."
        ) from None
    return state
