"""A real Dovecot (IMAP + POP3) started from a temporary config, for tests and benchmarks.

Runs as root from its own base_dir; mail is stored as maildir owned by ``nobody``. Listens
on 127.0.0.1 only: one plain port per protocol (which also offers STARTTLS when TLS is
enabled) and one implicit-TLS port per protocol.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from devtools.certs import Certificate, free_port
from devtools.processes import stop_process_group

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
NOBODY_UID = 65534
NOGROUP_GID = 65534


@dataclass
class Dovecot:
    """One Dovecot instance; ``start()`` it, ``stop()`` it, ``deliver()`` mail into it."""

    root: Path
    certificate: Certificate | None
    users: dict[str, str] = field(default_factory=dict)
    imap_port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    pop3_port: int = field(default_factory=free_port)
    pop3s_port: int = field(default_factory=free_port)
    #: Appended to the generated dovecot.conf (e.g. an ``imap_capability`` override).
    extra_config: str = ""
    #: Set: also accept OAuth 2.0 sign-in (SASL XOAUTH2 and OAUTHBEARER), the tokens
    #: checked at this RFC 7662 introspection URL; passwords still work (PLAIN, LOGIN).
    oauth2_introspection_url: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Dovecot's unprivileged processes must traverse every directory down to its files.
        for directory in (self.root, *self.root.parents):
            if str(directory) in ("/", "/tmp") or directory.stat().st_uid != os.getuid():
                break
            directory.chmod(directory.stat().st_mode | 0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        (self.root / "mail").chmod(0o777)
        self.write_users()
        tls = self.certificate is not None
        ssl_block = (
            f"ssl = yes\nssl_cert = <{self.certificate.cert_path}\n"
            f"ssl_key = <{self.certificate.key_path}\n"
            if self.certificate
            else "ssl = no\n"
        )

        def tls_listeners(name: str, port: int) -> str:
            if not tls:
                return ""
            return (
                f"  inet_listener {name}s {{\n    address = 127.0.0.1\n"
                f"    port = {port}\n    ssl = yes\n  }}\n"
            )

        mechanisms = "plain login"
        password_passdb_mechanisms = ""
        oauth2_passdb = ""
        if self.oauth2_introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            password_passdb_mechanisms = "  mechanisms = plain login\n"
            (self.root / "oauth2.conf").write_text(
                f"introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth2_passdb = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {self.root}/oauth2.conf\n}}\n"
            )
        self.config_path.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap pop3
listen = 127.0.0.1
{ssl_block}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_username_format = %n
mail_location = maildir:{self.root}/mail/%n
first_valid_uid = 1
login_trusted_networks =
mail_max_userip_connections = 1000
pop3_uidl_format = %08Xu%08Xv
protocol imap {{
  imap_idle_notify_interval = 1 secs
}}
{oauth2_passdb}passdb {{
  driver = passwd-file
{password_passdb_mechanisms}  args = scheme=PLAIN username_format=%n {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.root}/passwd
  default_fields = uid={NOBODY_UID} gid={NOGROUP_GID} home={self.root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
{tls_listeners("imap", self.imaps_port)}  process_min_avail = 1
  service_count = 0
  client_limit = 1000
  process_limit = 600
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
{tls_listeners("pop3", self.pop3s_port)}}}
service imap {{
  process_limit = 600
}}
service auth {{
  client_limit = 8000
}}
service anvil {{
  client_limit = 8000
}}
default_process_limit = 600
default_client_limit = 4000
{self.extra_config}
"""
        )

    def write_users(self) -> None:
        lines = [
            f"{user}:{{PLAIN}}{password}:{NOBODY_UID}:{NOGROUP_GID}::{self.root}/mail/{user}::"
            for user, password in self.users.items()
        ]
        (self.root / "passwd").write_text("\n".join(lines) + "\n")

    def add_user(self, user: str, password: str) -> None:
        """Add or change a user; Dovecot re-reads the passwd file on the next login."""
        self.users[user] = password
        self.write_users()

    def start(self) -> Dovecot:
        self.write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        ports = [self.imap_port, self.pop3_port]
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(self._failure("exited"))
            if all(_listening(port) for port in ports):
                return
            time.sleep(0.05)
        raise RuntimeError(self._failure("did not listen within 20 s"))

    def _failure(self, what: str) -> str:
        logs = ""
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                logs += path.read_text()[-3000:]
        return f"Dovecot {what}: {logs}"

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process_group(self.process, timeout=10)
        self.process = None

    def client(self, user: str) -> IMAPClient:
        """A plain IMAP session for the test itself (to deliver and inspect mail)."""
        client = IMAPClient("127.0.0.1", port=self.imap_port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def deliver(
        self, user: str, messages: list[bytes], folder: str = "INBOX", flags: tuple[str, ...] = ()
    ) -> None:
        """Put messages into a user's folder (oldest first) through IMAP APPEND."""
        with self.client(user) as client:
            if folder.upper() != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw, flags=flags)
            client.logout()

    def write_maildir(self, user: str, messages: list[tuple[bytes, bool]]) -> None:
        """Write ``(raw, seen)`` messages straight into a user's INBOX maildir, oldest first.

        For backlogs of thousands of messages, which APPEND would take minutes to deliver.
        Dovecot finds them at the next SELECT or NOOP; its processes run as ``nobody``.
        """
        maildir = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for directory in (maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            os.chown(directory, NOBODY_UID, NOBODY_UID)  # Dovecot writes its index here
        stamp = int(time.time()) - len(messages)
        for number, (raw, seen) in enumerate(messages):
            name = f"{stamp + number}.M{number:07d}P{os.getpid()}.written:2,{'S' if seen else ''}"
            path = maildir / "cur" / name
            path.write_bytes(raw)
            os.chown(path, NOBODY_UID, NOBODY_UID)

    def flags_by_subject(self, user: str, folder: str = "INBOX") -> dict[str, set[bytes]]:
        """Each message of ``folder`` as its Subject and its flags (without ``\\Recent``)."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fields = [b"FLAGS", b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]
            data = client.fetch(uids, fields) if uids else {}
            client.logout()
        return {
            item[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip(): (
                set(item[b"FLAGS"]) - {b"\\Recent"}
            )
            for item in data.values()
        }

    def clear(self, user: str) -> None:
        """Empty a user's mailbox: every folder removed, the inbox emptied."""
        with self.client(user) as client:
            for _flags, _sep, name in client.list_folders():
                if name.upper() != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            if client.search("ALL"):
                # One short command, however many messages (imapclient would list them all).
                typ, data = client._imap.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
                if typ != "OK":
                    raise RuntimeError(f"Dovecot refused to clear {user}: {data!r}")
                client.expunge()
            client.logout()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
