"""docs/denoise.png: a denoising autoencoder (Gaussian σ 0.3) on held-out digits."""

MODEL = "denoising"
PARAMS = {"code_size": 32}
EPOCHS = 25


def drive(page, panel, expect) -> None:
    page.locator("#denoise").click()
    expect(panel.get_by_text("SSIM").first).to_be_visible(timeout=60_000)
