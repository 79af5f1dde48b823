"""docs/traverse.png: a VAE with a 2-D code, its decoder mapped over the plane of its prior."""

MODEL = "vae"
PARAMS = {"code_size": 2}
EPOCHS = 25


def drive(page, panel, expect) -> None:
    page.locator("#traverse").click()
    expect(page.locator("#traverse-caption")).to_contain_text("A grid over units", timeout=60_000)
