"""What the browser tests share: Chromium (required in CI, else the importing module is
skipped), Playwright's ``expect`` with the suite's timeout, and the few gestures a person makes
on the page. The ``browser`` and ``page`` fixtures are in conftest.py (``page`` opens a fresh
tab on the test module's own ``lab``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aelab.ui.devserver import CHROMIUM

if not Path(CHROMIUM).exists():
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing; the browser tests must run in CI", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing (apt install chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

TIMEOUT = 60_000  # ms; generous because the machine is shared
expect.set_options(timeout=TIMEOUT)


def set_number(page, elem_id: str, value: str) -> None:
    """Type into a slider's or number's box and commit it, as a person would."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(value)
    box.press("Enter")
    box.blur()


def set_epochs(page, n: int) -> None:
    if not page.locator("#train-epochs input[type=number]").first.is_visible():
        page.get_by_text("Training settings").click()  # the accordion opens; it stays open
    set_number(page, "train-epochs", str(n))
    expect(page.locator("#architecture")).to_contain_text(f"{n} epoch(s)")


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
