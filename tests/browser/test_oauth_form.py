"""The OAuth 2.0 fields of the three connection forms, in a real browser.

Authentication is a dropdown (password preselected, oauth2), the OAuth fields follow, the
client secret and refresh token are password inputs; an IMAP connection filled in through
the form is saved with flat extras, comes back masked from the REST API and the edit
form, and its Test button signs in to the OAuth Dovecot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.api_server import ApiServer
from devtools.certs import Certificate
from devtools.dovecot import Dovecot
from devtools.token_endpoint import MAIL_SCOPE, TokenEndpoint
from tests.browser.conftest import missing_browser
from tests.oauth_fixtures import CLIENT_ID, CLIENT_SECRET, MAILBOX

_reason = missing_browser()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.test_connection_forms import (  # noqa: E402
    CONNECTION_TYPES,
    choose,
    choose_security,
    field,
    field_label,
    open_add_form,
    open_connections,
    open_section,
    press_test,
    settle,
)

OAUTH_FIELDS = {
    "oauth2_token_url": "Token URL",
    "oauth2_client_id": "Client ID",
    "oauth2_client_secret": "Client Secret",
    "oauth2_refresh_token": "Refresh Token",
    "oauth2_scope": "Scope",
}
SECRET_FIELDS = ("oauth2_client_secret", "oauth2_refresh_token")


@pytest.mark.parametrize(("conn_type", "hook_name"), CONNECTION_TYPES)
def test_every_form_has_the_oauth_fields_with_masked_secrets(
    page: Page, artifacts: Path, conn_type: str, hook_name: str
) -> None:
    dialog = open_add_form(page, hook_name)
    open_section(dialog, "Extra Fields")
    expect(field_label(dialog, "Authentication")).to_be_visible()
    expect(dialog.locator("input[name='element_auth_type']")).to_have_value("password")
    for name, label in OAUTH_FIELDS.items():
        control = field(dialog, label, "input")
        expect(control).to_be_visible()
        expect(control).to_have_attribute("name", f"element_{name}")
        if name in SECRET_FIELDS:
            expect(control).to_have_attribute("type", "password")
        else:
            expect(control).not_to_have_attribute("type", "password")
    dialog.get_by_role("combobox", name="Authentication").click()
    expect(page.get_by_role("option")).to_have_text(["password", "oauth2"])
    page.keyboard.press("Escape")
    page.screenshot(path=artifacts / f"{conn_type}-oauth-fields.png", full_page=True)


def test_oauth_connection_saved_through_the_form_is_masked_and_tests_green(
    page: Page,
    api_server: ApiServer,
    artifacts: Path,
    certificate: Certificate,
    oauth: TokenEndpoint,
    oauth_dovecot: Dovecot,
) -> None:
    conn_id = "browser_imap_oauth"
    refresh_token = oauth.sign_in(CLIENT_ID, MAILBOX)
    dialog = open_add_form(page, "Receive Email (IMAP)")
    dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
    dialog.get_by_label("Email Host Name", exact=True).fill("localhost")
    dialog.get_by_label("Email Server Port Number", exact=True).fill(str(oauth_dovecot.imap_port))
    dialog.get_by_label("User Name", exact=True).fill(MAILBOX)

    open_section(dialog, "Extra Fields")
    choose_security(page, dialog, "starttls")
    field(dialog, "Server Certificate", "textarea").fill(certificate.pem)
    choose(page, dialog, "Authentication", "auth_type", "oauth2")
    values = {
        "oauth2_token_url": oauth.token_url,
        "oauth2_client_id": CLIENT_ID,
        "oauth2_client_secret": CLIENT_SECRET,
        "oauth2_refresh_token": refresh_token,
        "oauth2_scope": MAIL_SCOPE,
    }
    for name, value in values.items():
        field(dialog, OAUTH_FIELDS[name], "input").fill(value)
    for name in SECRET_FIELDS:
        secret = field(dialog, OAUTH_FIELDS[name], "input")
        expect(secret).to_have_attribute("type", "password")
    page.screenshot(path=artifacts / "mail_imap-oauth-filled-form.png", full_page=True)

    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/connections")
    ) as posted:
        dialog.get_by_role("button", name="Save").click()
    assert posted.value.status < 300, posted.value.text()
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The REST API (and so every page of the UI) shows the secrets masked.
    stored = json.loads(api_server.api("GET", f"connections/{conn_id}")["extra"])
    assert stored["auth_type"] == "oauth2"
    assert stored["oauth2_client_id"] == CLIENT_ID
    assert stored["oauth2_scope"] == MAIL_SCOPE
    assert stored["oauth2_client_secret"] == "***"
    assert stored["oauth2_refresh_token"] == "***"

    # The edit form never puts the secrets into the page.
    open_connections(page)
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    open_section(dialog, "Extra Fields")
    expect(field(dialog, "Client Secret", "input")).to_have_attribute("type", "password")
    html = dialog.inner_html()
    assert CLIENT_SECRET not in html and refresh_token not in html
    page.screenshot(path=artifacts / "mail_imap-oauth-edit-form.png", full_page=True)
    page.keyboard.press("Escape")

    toast = press_test(page, conn_id)
    expect(toast).to_have_attribute("data-type", "success")
    expect(toast).to_contain_text(
        f"Connected to localhost:{oauth_dovecot.imap_port} (starttls) as 'info' "
        "(OAuth 2.0, refresh_token grant) and selected the inbox."
    )
    settle(toast)
    page.screenshot(path=artifacts / "test-button-oauth-success.png", full_page=True)
