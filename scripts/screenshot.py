"""Take docs/lab.png: start the lab, train briefly in Chromium so the plots fill, screenshot it.

.venv/bin/python scripts/screenshot.py [--out docs/lab.png] [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from screenshot_app import set_number  # noqa: E402  (a script beside this one)

from aelab.plugins import get_model  # noqa: E402
from aelab.ui.devserver import ARGS, CHROMIUM, LabServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "lab.png"))
    parser.add_argument("--epochs", default="15")
    parser.add_argument("--model", default="denoising", help="model id to train for the picture")
    parser.add_argument("--height", type=int, default=2250, help="pixels of the page to keep")
    args = parser.parse_args()
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
            page.locator("#model input").click()
            page.get_by_role("option", name=get_model(args.model).name, exact=True).click()
            expect(page.locator(f"#{args.model}-code_size")).to_be_visible()
            set_number(page, f"{args.model}-code_size", "2")
            expect(arch).to_contain_text("code 2 units", timeout=30_000)
            page.get_by_text("Training settings").click()
            set_number(page, "train-epochs", args.epochs)
            expect(arch).to_contain_text(f"{args.epochs} epoch(s)", timeout=30_000)
            page.get_by_text("Training settings").click()
            page.locator("#train").click()
            expect(page.locator("#status")).to_contain_text("Finished", timeout=180_000)
            page.locator("#map").click()
            expect(page.get_by_text("held-out samples; its position")).to_be_visible(timeout=60_000)
            page.locator("#interpolate").click()
            expect(page.get_by_text("First and last tiles")).to_be_visible(timeout=60_000)
            page.evaluate("window.scrollTo(0, 0)")
            # Build, Train and the latent map: the part of the page people look at first.
            page.screenshot(
                path=args.out,
                full_page=True,
                clip={"x": 0, "y": 0, "width": 1440, "height": args.height},
            )
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
