"""docs/series.png: a 1-D convolutional autoencoder on the built-in sensor series, its anomaly
scores along the time axis with the threshold, the known anomalies shaded."""

MODEL = "conv1d"
DATASET = "sensors"
APP = "anomaly"
PARAMS: dict = {}
EPOCHS = 30


def drive(page, panel, expect) -> None:
    panel.get_by_label("Normal classes").fill("0")
    page.locator("#anomaly-score").click()
    expect(page.locator("#anomaly-caption")).to_contain_text("AUROC", timeout=120_000)
