"""The three connection forms and the Test button, checked in a real browser.

A throw-away ``airflow api-server`` (SQLite, SimpleAuthManager, Test button enabled) is
driven by headless Chromium: Admin -> Connections -> Add Connection for each connection
type, one IMAP connection saved through the form (its extras read back over the REST
API), and the Test button of the list pressed against the real test Dovecot, once with the
right and once with a wrong password. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.api_server import ApiServer
from devtools.certs import Certificate
from devtools.connections import USERS
from devtools.dovecot import Dovecot
from tests.browser.conftest import missing_browser

_reason = missing_browser()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Locator, Page, expect  # noqa: E402

CONNECTION_TYPES = [
    ("mail_imap", "Receive Email (IMAP)"),
    ("mail_pop3", "Receive Email (POP3)"),
    ("mail_smtp", "Send Email (SMTP)"),
]
STANDARD_LABELS = {
    "host": "Email Host Name",
    "port": "Email Server Port Number",
    "login": "User Name",
    "password": "Password",
}


def open_connections(page: Page) -> None:
    """Home page, then Admin -> Connections in the navigation bar."""
    page.goto("/")
    page.get_by_role("button", name="Admin", exact=True).click()
    page.get_by_role("menuitem", name="Connections", exact=True).click()
    expect(page).to_have_url(re.compile(r"/connections$"))
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible()


def open_add_form(page: Page, hook_name: str) -> Locator:
    """The Add Connection dialog with ``hook_name`` chosen as the connection type."""
    open_connections(page)
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    dialog.get_by_role("combobox", name="Connection Type").fill(hook_name)
    page.get_by_role("option", name=hook_name, exact=True).click()
    expect(section_trigger(dialog, "Standard Fields")).to_be_visible()
    return dialog


def section_trigger(dialog: Locator, title: str) -> Locator:
    return dialog.locator("button[data-part='item-trigger']").filter(
        has_text=re.compile(rf"^{re.escape(title)}$")
    )


def open_section(dialog: Locator, title: str) -> None:
    """Open one accordion section (the form shows one section at a time)."""
    trigger = section_trigger(dialog, title)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true")


def field_label(root: Locator | Page, text: str) -> Locator:
    """A form label by its text (the red star of required fields is not part of it)."""
    return root.locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*\*?$"))


def field(dialog: Locator, label: str, control: str) -> Locator:
    """The ``control`` (CSS) of the form field labelled ``label``.

    Needed for fields whose label is not tied to the control (the UI's textarea for a
    ``multiline`` extra gets an id other than its label's ``for``).
    """
    return dialog.get_by_role("group").filter(has=field_label(dialog.page, label)).locator(control)


def choose(page: Page, dialog: Locator, label: str, extra: str, value: str) -> None:
    """Pick ``value`` in the dropdown ``label`` of the extra ``extra``, and check it took."""
    dialog.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=value, exact=True).click()
    expect(dialog.locator(f"input[name='element_{extra}']")).to_have_value(value)


def choose_security(page: Page, dialog: Locator, value: str) -> None:
    choose(page, dialog, "Security Method", "security", value)


@pytest.mark.parametrize(("conn_type", "hook_name"), CONNECTION_TYPES)
def test_add_form_shows_the_email_fields(
    page: Page, artifacts: Path, conn_type: str, hook_name: str
) -> None:
    dialog = open_add_form(page, hook_name)

    # Standard Fields: relabelled for email, schema hidden.
    for name, label in STANDARD_LABELS.items():
        expect(field_label(dialog, label)).to_be_visible()
        expect(dialog.get_by_label(label, exact=True)).to_have_attribute("name", name)
        expect(dialog.locator(f"[name='{name}']")).to_be_visible()
    expect(dialog.get_by_label("Password", exact=True)).to_have_attribute("type", "password")
    # The port's hint points at the Security Method, whose help gives the usual ports.
    expect(dialog.get_by_label("Email Server Port Number", exact=True)).to_have_attribute(
        "placeholder", "empty: the usual port of the Security Method (under Extra Fields)"
    )
    expect(dialog.locator("[name='schema']")).to_have_count(0)
    expect(field_label(dialog, "Schema")).to_have_count(0)
    expect(field_label(dialog, "Host")).to_have_count(0)
    expect(field_label(dialog, "Login")).to_have_count(0)
    page.screenshot(path=artifacts / f"{conn_type}-standard-fields.png", full_page=True)

    # Extra Fields: Security Method dropdown (ssl preselected), certificate, timeout.
    open_section(dialog, "Extra Fields")
    expect(field_label(dialog, "Security Method")).to_be_visible()
    expect(dialog.locator("input[name='element_security']")).to_have_value("ssl")
    security = dialog.get_by_role("combobox", name="Security Method")
    expect(dialog).to_contain_text("ssl = TLS from the first byte, usual ports 993/995/465")
    expect(dialog).to_contain_text("usual ports 143/110/587 (SMTP submission")
    expect(dialog).to_contain_text("Airflow's Extra Fields JSON box below only shows them")
    expect(dialog.locator("#element_security")).to_contain_text("ssl")

    certificate = field(dialog, "Server Certificate", "textarea")
    expect(certificate).to_be_visible()
    expect(certificate).to_have_attribute("name", "element_server_certificate")
    expect(certificate).to_have_value("")

    timeout = dialog.get_by_label("Timeout", exact=True)
    expect(timeout).to_be_visible()
    expect(timeout).to_have_value("30")
    if conn_type == "mail_imap":
        # IMAP only: how pollers of one mailbox keep their claims apart.
        expect(field_label(dialog, "Claim Lock")).to_be_visible()
        expect(dialog.locator("input[name='element_claim_lock']")).to_have_value("host")
        expect(dialog).to_contain_text("from receiving the same email twice")
    else:
        expect(field_label(dialog, "Claim Lock")).to_have_count(0)
    page.screenshot(path=artifacts / f"{conn_type}-extra-fields.png", full_page=True)

    security.click()
    options = page.get_by_role("option")
    expect(options).to_have_text(["none", "starttls", "ssl"])
    page.screenshot(path=artifacts / f"{conn_type}-security-options.png", full_page=True)
    page.keyboard.press("Escape")


def test_form_saves_extras_flat(
    page: Page, api_server: ApiServer, artifacts: Path, certificate: Certificate
) -> None:
    conn_id = "browser_imap_form"
    dialog = open_add_form(page, "Receive Email (IMAP)")
    dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
    dialog.get_by_label("Email Host Name", exact=True).fill("imap.example.com")
    dialog.get_by_label("Email Server Port Number", exact=True).fill("143")
    dialog.get_by_label("User Name", exact=True).fill("info@example.com")
    dialog.get_by_label("Password", exact=True).fill("form-Secret-1")

    open_section(dialog, "Extra Fields")
    choose_security(page, dialog, "starttls")
    field(dialog, "Server Certificate", "textarea").fill(certificate.pem)
    page.screenshot(path=artifacts / "mail_imap-filled-form.png", full_page=True)

    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_enabled()
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/connections")
    ) as posted:
        save.click()
    assert posted.value.status < 300, posted.value.text()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text=conn_id)).to_be_visible()
    page.screenshot(path=artifacts / "mail_imap-saved-list.png", full_page=True)

    stored = api_server.api("GET", f"connections/{conn_id}")
    assert stored["conn_type"] == "mail_imap"
    assert stored["host"] == "imap.example.com"
    assert stored["port"] == 143
    assert stored["login"] == "info@example.com"
    assert stored["schema"] in (None, "")
    extra = json.loads(stored["extra"])
    assert extra == {
        "security": "starttls",
        "server_certificate": certificate.pem,
        "timeout": 30,
        "claim_lock": "host",
        # Authentication and the OAuth fields (tests/browser/test_oauth_form.py), unset.
        "auth_type": "password",
        "oauth2_token_url": None,
        "oauth2_client_id": None,
        "oauth2_client_secret": None,
        "oauth2_refresh_token": None,
        "oauth2_scope": None,
    }


def settle(toast: Locator) -> None:
    """Wait until the toast has finished sliding in, so the screenshot shows it whole."""
    toast.evaluate(
        "element => Promise.all(element.getAnimations({subtree: true}).map(a => a.finished))"
    )


def create_connection(api_server: ApiServer, conn_id: str, **fields: Any) -> None:
    extra = fields.pop("extra")
    api_server.api(
        "POST",
        "connections",
        {"connection_id": conn_id, "conn_type": "mail_imap", **fields, "extra": json.dumps(extra)},
    )


def press_test(page: Page, conn_id: str) -> Locator:
    """Press the Test button on the connection's row; the toast that answers."""
    open_connections(page)
    row = page.get_by_role("row").filter(has_text=conn_id)
    expect(row).to_be_visible()
    button = row.get_by_role("button", name="Test Connection")
    expect(button).to_be_enabled()
    button.click()
    toast = page.locator("[data-scope='toast'][data-part='root']")
    expect(toast).to_have_count(1, timeout=30_000)
    return toast


@pytest.mark.parametrize("right_password", [True, False], ids=["right-password", "wrong-password"])
def test_test_button_against_dovecot(
    page: Page,
    api_server: ApiServer,
    artifacts: Path,
    dovecot: Dovecot,
    certificate: Certificate,
    right_password: bool,
) -> None:
    conn_id = f"browser_imap_{'ok' if right_password else 'bad_password'}"
    address = f"localhost:{dovecot.imaps_port}"
    create_connection(
        api_server,
        conn_id,
        host="localhost",
        port=dovecot.imaps_port,
        login="info",
        password=USERS["info"] if right_password else "not-the-password",
        extra={"security": "ssl", "server_certificate": certificate.pem, "timeout": 10},
    )

    toast = press_test(page, conn_id)
    if right_password:
        expect(toast).to_have_attribute("data-type", "success")
        expect(toast).to_contain_text("Test Connection Successful")
        expect(toast).to_contain_text(
            f"Connected to {address} (ssl) as 'info' and selected the inbox."
        )
    else:
        expect(toast).to_have_attribute("data-type", "error")
        expect(toast).to_contain_text("Test Connection Failed")
        expect(toast).to_contain_text(
            f"{address} rejected the user name 'info' or its password; "
            "check User Name and Password."
        )
        expect(toast).not_to_contain_text("not-the-password")
    settle(toast)
    name = "test-button-success" if right_password else "test-button-wrong-password"
    page.screenshot(path=artifacts / f"{name}.png", full_page=True)
