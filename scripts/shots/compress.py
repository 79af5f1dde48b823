"""docs/compress.png: an autoencoder with an 8-unit code compresses the held-out digits at 4 bits
per unit, next to PCA at the same bytes, with the rate-distortion sweep over 1-12 bits."""

MODEL = "autoencoder"
PARAMS: dict = {"code_size": 8}
EPOCHS = 60


def drive(page, panel, expect) -> None:
    box = page.locator("#compress-bits input[type=number]").first
    box.fill("4")
    box.press("Enter")
    box.blur()
    page.locator("#compress").click()
    expect(page.locator("#compress-caption")).to_contain_text("bytes per sample", timeout=120_000)
    expect(page.locator("#compress-rd")).to_contain_text("PSNR (dB)", timeout=30_000)
    page.wait_for_timeout(1500)  # let the plot finish drawing
