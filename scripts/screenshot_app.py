"""Take docs/<app>.png: train a model in the lab, use one application's tab, screenshot the tab.

.venv/bin/python scripts/screenshot_app.py anomaly [--out docs/anomaly.png]

Each application's recipe is ``scripts/shots/<app>.py``: ``MODEL`` (a model id), ``PARAMS``
(hyperparameters typed into the lab, by field), ``EPOCHS`` and ``drive(page, panel, expect)``,
which fills the tab's controls, presses its button and waits for the result; optionally
``DATASET`` (a built-in other than digits) and ``APP`` (the tab, when the recipe's name is not an
application id).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aelab.plugins import get_model  # noqa: E402
from aelab.ui.devserver import ARGS, CHROMIUM, LabServer  # noqa: E402


def set_number(page, elem_id: str, value: str) -> None:
    """Type a value into a slider's or number's box and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(value)
    box.press("Enter")
    box.blur()


def recipe(app: str):
    """The module scripts/shots/<app>.py."""
    path = ROOT / "scripts" / "shots" / f"{app}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.py")))
        raise SystemExit(f"No recipe for {app!r}; recipes: {known}.")
    spec = importlib.util.spec_from_file_location(f"shot_{app}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", help="application id, e.g. anomaly")
    parser.add_argument("--out", help="default: docs/<app>.png")
    args = parser.parse_args()
    shot = recipe(args.app)
    out = args.out or str(ROOT / "docs" / f"{args.app}.png")
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "AELAB_RUNS_DIR": os.path.join(tmp, "runs"),
            "AELAB_EXPORTS_DIR": os.path.join(tmp, "exports"),
        }
        with LabServer(env) as lab, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(lab.url)
            arch = page.locator("#architecture")
            expect(arch).to_contain_text("parameters", timeout=60_000)
            if getattr(shot, "DATASET", None):
                page.locator("#dataset input").click()
                page.get_by_role("option", name=shot.DATASET, exact=True).click()
            page.locator("#model input").click()
            page.get_by_role("option", name=get_model(shot.MODEL).name, exact=True).click()
            expect(page.locator(f"#{shot.MODEL}-code_size")).to_be_visible()
            for field, value in getattr(shot, "PARAMS", {}).items():
                set_number(page, f"{shot.MODEL}-{field}", str(value))
            page.get_by_text("Training settings").click()
            set_number(page, "train-epochs", str(shot.EPOCHS))
            expect(arch).to_contain_text(f"{shot.EPOCHS} epoch(s)", timeout=30_000)
            page.get_by_text("Training settings").click()
            page.locator("#train").click()
            expect(page.locator("#status")).to_contain_text("Finished", timeout=900_000)
            app = getattr(shot, "APP", args.app)  # a recipe may shoot another app's tab
            page.locator(f"#tab-app-{app}-button").click()
            panel = page.locator(f"#tab-app-{app}")
            shot.drive(page, panel, expect)
            panel.screenshot(path=out)
            browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
