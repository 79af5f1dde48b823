"""Train the digits classifier whose features aelab's Fréchet distance uses, and ship its weights.

Run: .venv/bin/python scripts/digits_features.py  (writes aelab/assets/digits_features.safetensors)
A small MLP (64-64-32-10) trained on every built-in digit, seeded: the feature extractor is
fixed once, as Inception is for FID, so distances from different runs and machines compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from aelab.data import load_data
from aelab.metrics import train_feature_net

OUT = Path(__file__).resolve().parents[1] / "aelab" / "assets" / "digits_features.safetensors"


def main() -> None:
    data = load_data("digits")
    net = train_feature_net(data.x, data.labels, epochs=40, seed=0)
    with torch.no_grad():
        pred = net(torch.as_tensor(data.x)).argmax(1).numpy()
    print(f"training accuracy {np.mean(pred == data.labels):.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(OUT))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
