"""docs/encode.png: the codes table and a code-size sweep of an autoencoder against PCA."""

MODEL = "autoencoder"
PARAMS = {"code_size": 8}
EPOCHS = 10


def drive(page, panel, expect) -> None:
    page.locator("#encode").click()
    expect(panel.get_by_text("numbers each")).to_be_visible(timeout=60_000)
    panel.get_by_label("Code sizes").fill("2, 4, 8, 16")
    epochs = panel.get_by_label("Epochs per model (0: the run's own)")
    epochs.fill("60")
    epochs.press("Enter")
    page.locator("#encode-sweep").click()
    expect(page.locator("#encode-sweep-caption")).to_contain_text("60 epochs", timeout=900_000)
