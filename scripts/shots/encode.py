"""docs/encode.png: the codes table and a code-size sweep of an autoencoder against PCA."""

MODEL = "autoencoder"
PARAMS = {"code_size": 8}
EPOCHS = 10


def drive(page, panel, expect) -> None:
    page.locator("#encode").click()
    expect(panel.get_by_text("numbers each")).to_be_visible(timeout=60_000)
    page.locator("#encode-sweep").click()
    expect(page.locator("#encode-sweep-caption")).to_contain_text("against PCA", timeout=600_000)
