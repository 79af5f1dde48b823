"""docs/search.png: an autoencoder with an 8-unit code finds the digits nearest to sample #12,
then precision@10 of code, raw-pixel and PCA search on the held-out digits."""

MODEL = "autoencoder"
PARAMS: dict = {"code_size": 8}
EPOCHS = 60


def drive(page, panel, expect) -> None:
    box = page.locator("#search-number input[type=number]").first
    box.fill("12")
    box.press("Enter")
    page.locator("#search").click()
    expect(page.locator("#search-caption")).to_contain_text("samples nearest", timeout=60_000)
    page.locator("#search-evaluate").click()
    expect(page.locator("#search-eval-caption")).to_contain_text("precision@10", timeout=60_000)
