"""docs/anomaly.png: an autoencoder scores the held-out digits, digits 0-4 counted as normal."""

MODEL = "autoencoder"
PARAMS: dict = {}
EPOCHS = 15


def drive(page, panel, expect) -> None:
    panel.get_by_label("Normal classes").fill("0, 1, 2, 3, 4")
    panel.get_by_label("Contamination").last.fill("0.3")
    panel.get_by_label("Contamination").last.press("Enter")
    page.locator("#anomaly-score").click()
    expect(page.locator("#anomaly-caption")).to_contain_text("AUROC", timeout=60_000)
