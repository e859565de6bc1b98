"""Browser tests: Playwright driving Debian's Chromium against the running portal.

Fixtures ``browser`` (one Chromium per session) and ``page`` (a fresh context per
test). :func:`screenshot` keeps pictures under ``test-artifacts/screenshots/``;
:func:`accessibility_violations` runs axe-core (from the portal's npm packages)
in the page and returns the serious and critical findings.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("OPR_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium tries the network at start-up, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _repo_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "uv.lock").is_file():
            return folder
    raise RuntimeError("workspace root not found")


ARTIFACTS = _repo_root() / "test-artifacts" / "screenshots"
AXE = _repo_root() / "portal" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs it"  # noqa: ASYNC240 - once per session
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="Asia/Hong_Kong"
    )
    new_page = await context.new_page()
    new_page.set_default_timeout(15_000)
    new_page.test_name = request.node.name  # type: ignore[attr-defined]
    yield new_page
    await context.close()


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; return its path."""
    test = re.sub(r"[^\w.-]+", "_", getattr(page, "test_name", "page"))
    path = ARTIFACTS / test / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    return path


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.exists(), "axe-core is missing: `make test` installs the portal's packages"
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
