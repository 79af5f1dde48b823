"""docs/inpaint.png: an autoencoder fills the centre quarter of held-out digits, scored in the hole
against the per-value mean and neighbour diffusion."""

MODEL = "autoencoder"
PARAMS: dict = {"code_size": 16}
EPOCHS = 30


def drive(page, panel, expect) -> None:
    page.locator("#inpaint").click()
    expect(page.locator("#inpaint-caption")).to_contain_text("dB", timeout=120_000)
    expect(page.locator("#inpaint-grid img").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(3000)  # let the plot finish drawing
