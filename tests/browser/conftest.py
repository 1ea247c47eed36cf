"""Fixtures for the browser tests: a throw-away api-server and headless Chromium.

Playwright is imported lazily, so that collecting the suite works without it; the test
module skips itself (with the reason from :func:`missing_browser`) when the browser or
Playwright is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.api_server import ApiServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium fonts-dejavu-core)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if not missing:
        return None
    return "browser tests need " + " and ".join(missing)


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free 127.0.0.1 port, with its own home and database."""
    server = ApiServer(tmp_path_factory.mktemp("api-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (``test-artifacts/browser/``, gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian, driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, api_server: ApiServer) -> Iterator[Any]:
    """A fresh browser tab (own cookies and storage) on the api-server's base URL."""
    context = browser.new_context(
        base_url=api_server.base_url, viewport={"width": 1400, "height": 1000}
    )
    context.set_default_timeout(60_000)
    tab = context.new_page()
    yield tab
    context.close()
