"""docs/sample.png: 32 new digits from a VAE's prior."""

MODEL = "vae"
PARAMS = {"code_size": 8}
EPOCHS = 25


def drive(page, panel, expect) -> None:
    box = panel.get_by_label("Samples").last
    box.fill("32")
    box.press("Enter")
    page.locator("#generate").click()
    expect(panel.get_by_text("32 new samples")).to_be_visible(timeout=60_000)
