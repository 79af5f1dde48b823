"""Take docs/anomaly.png: train an autoencoder in the lab, score anomalies, screenshot the tab.

.venv/bin/python scripts/screenshot_anomaly.py [--out docs/anomaly.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aelab.ui.devserver import ARGS, CHROMIUM, LabServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "anomaly.png"))
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
            expect(page.locator("#architecture")).to_contain_text("parameters", timeout=60_000)
            page.locator("#train").click()
            expect(page.locator("#status")).to_contain_text("Finished", timeout=180_000)
            page.locator("#tab-app-anomaly-button").click()
            panel = page.locator("#tab-app-anomaly")
            panel.get_by_label("Normal classes").fill("0, 1, 2, 3, 4")
            panel.get_by_label("Contamination").last.fill("0.3")
            panel.get_by_label("Contamination").last.press("Enter")
            page.locator("#anomaly-score").click()
            expect(page.locator("#anomaly-caption")).to_contain_text("AUROC", timeout=60_000)
            panel.screenshot(path=args.out)
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
