"""What the model learned, for the page: architecture, latent map, interpolation, samples, PCA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import AelabError
from .session import LabSession, dataset_summary, load_dataset, validated

MAX_MAP_POINTS = 1000  # enough to see clusters; t-SNE on more would keep the page waiting
MAX_TSNE_POINTS = 500
SPARSE_ACTIVE = 0.1  # a sparse code unit counts as in use above this (sigmoid codes, rho ~ 0.05)


def architecture(
    model_id: str, dataset: str, upload: Any, params: dict, config: dict | None = None
) -> tuple[str, str]:
    """Markdown for the data and the architecture and training the current settings give."""
    from .. import inspect as ins  # torch: not before it is needed

    spec, p, c = validated(model_id, params, config)
    data = load_dataset(None, dataset, upload)
    model = spec.build(p, data.sample_shape, data.kind)
    from ..models import describe_learning_rates

    rates = describe_learning_rates(model.learning_rates(c), c.lr)
    plan = (
        f"**Training:** {c.epochs} epoch(s) in batches of {c.batch_size}, {c.optimizer} at "
        f"{rates}, seed {c.seed}, {c.val_fraction:.0%} held out for validation."
    )
    return dataset_summary(data), ins.architecture(model).markdown() + "\n\n" + plan


def latent_map(session: LabSession, method: str) -> tuple[pd.DataFrame, str]:
    """The test set's codes in 2-D, coloured by label, with a caption saying how they were made."""
    from .. import inspect as ins  # torch: not before it is needed

    model = session.require_model()
    if "encode" not in getattr(model, "capabilities", ()):
        raise AelabError("This model has no encoder, so there are no codes of real data to map.")
    test = session.test_set()
    limit = MAX_TSNE_POINTS if method == "tsne" else MAX_MAP_POINTS
    x = test.x[:limit]
    labels = test.labels[:limit] if test.labels is not None else None
    proj = ins.latent_map(
        model, x, labels, method=method, seed=session.config.seed if session.config else 0
    )
    if labels is None:
        names = ["all"] * len(x)
    elif test.label_names:
        names = [test.label_names[i] for i in labels]
    else:
        names = [str(i) for i in labels]
    frame = pd.DataFrame({"x": proj.xy[:, 0], "y": proj.xy[:, 1], "label": names})
    code = int(np.prod(model.code_shape))
    how = {
        "direct": f"the code's {code} unit(s) plotted directly",
        "pca": f"the first two principal components of the {code}-unit codes"
        + (f" (they keep {proj.explained:.0%} of the codes' variance)" if proj.explained else ""),
        "tsne": f"a t-SNE map of the {code}-unit codes (distances between clusters mean little)",
    }[proj.method]
    colour = (
        "Colours are the data's labels, which the model never saw"
        if labels is not None
        else ("The data has no labels, so every point has one colour")
    )
    caption = (
        f"Each point is one of {len(x)} held-out samples; its position is {how}. {colour}: "
        "clusters of one colour mean the code separates the classes without being told them."
    )
    return frame, caption


def _pick(test: Any, index: float | None, name: str) -> int:
    i = int(index or 0)
    if not 0 <= i < len(test):
        raise AelabError(f"Input {name} must be an index from 0 to {len(test) - 1}, not {i}.")
    return i


def _label(test: Any, i: int) -> str:
    if test.labels is None:
        return f"#{i}"
    name = test.label_names[test.labels[i]] if test.label_names else str(test.labels[i])
    return f"#{i} (label {name})"


def interpolation(session: LabSession, a: float, b: float, steps: float) -> tuple[np.ndarray, str]:
    """A strip: input A, the decoded path between their codes, input B."""
    from .. import inspect as ins  # torch: not before it is needed

    model = session.require_model()
    if "encode" not in getattr(model, "capabilities", ()):
        raise AelabError("This model has no encoder, so it cannot interpolate between real inputs.")
    test = session.test_set()
    i, j = _pick(test, a, "A"), _pick(test, b, "B")
    n = int(steps or 8)
    if not 2 <= n <= 32:
        raise AelabError(f"Steps must be between 2 and 32, not {n}.")
    path = ins.interpolate(model, test.x[i], test.x[j], n)
    seq = np.concatenate([test.x[i : i + 1], path, test.x[j : j + 1]])
    if seq.ndim == 2:  # flat data: one panel, a line per step, from A's colour to B's
        from .. import charts

        steps_labels = ["A", *(str(k + 1) for k in range(n)), "B"]
        names = getattr(test, "feature_names", None)
        strip = charts.compare(
            [seq[k : k + 1] for k in range(len(seq))], steps_labels, names, titles=["A to B"]
        )
    else:
        strip = ins.image_grid([seq], ["A to B"], cell=56)
    caption = (
        f"First and last tiles: held-out inputs A {_label(test, i)} and B {_label(test, j)}. "
        f"Between them, {n} images decoded from evenly spaced points on the straight line from "
        "A's code to B's. Smooth changes mean a smooth latent space; blurry or odd middles show "
        "regions of code space the decoder never learned."
    )
    return strip, caption


def sample_grid(session: LabSession, n: float, seed: float) -> tuple[np.ndarray, str]:
    """New samples drawn from the model's prior, in rows of eight."""
    from .. import inspect as ins  # torch: not before it is needed

    model = session.require_model()
    if "sample" not in getattr(model, "capabilities", ()):
        name = session.spec.name if session.spec else "This model"
        raise AelabError(
            f"{name} does not sample: it has no prior to draw codes from. Try a VAE or a GAN."
        )
    count = int(n or 16)
    if not 1 <= count <= 64:
        raise AelabError(f"Choose between 1 and 64 samples, not {count}.")
    out = ins.samples(model, count, int(seed or 0))
    rows = [out[k : k + 8] for k in range(0, count, 8)]
    img = ins.image_grid(
        rows, [f"{8 * k + 1}-{8 * k + len(r)}" for k, r in enumerate(rows)], flat="gallery"
    )
    caption = (
        f"{count} new samples, each decoded from a code drawn at random from the prior "
        f"(seed {int(seed or 0)}); none of them is a training image."
    )
    return img, caption


def pca_comparison(session: LabSession) -> tuple[np.ndarray, str]:
    """The model against PCA with as many components as its code: MSE and the same inputs."""
    from .. import inspect as ins  # torch: not before it is needed

    model = session.require_model()
    if "reconstruct" not in getattr(model, "capabilities", ()):
        raise AelabError(
            "This model does not reconstruct its inputs, so there is nothing to compare with PCA."
        )
    train_part, test = session.train_set(), session.test_set()
    code = int(np.prod(model.code_shape))
    base = ins.pca_baseline(train_part.x, test.x, code)
    recon = ins.reconstruct(model, test.x)
    model_mse = ins.mse(recon, test.x)
    k = min(8, len(test))
    img = ins.image_grid(
        [test.x[:k], recon[:k], base.reconstructions[:k]],
        ["original", "model", f"PCA ({base.components})"],
        names=getattr(test, "feature_names", None),
    )
    better = "better than" if model_mse < base.mse else "no better than"
    table = (
        "| method | code size | test MSE |\n|---|---:|---:|\n"
        f"| {session.spec.name if session.spec else 'model'} | {code} | {model_mse:.5f} |\n"
        f"| PCA (linear, fitted on the training part) | {base.components} | {base.mse:.5f} |"
    )
    kind = getattr(model, "code_kind", "continuous")
    note = ""
    if kind == "sparse":
        # A sparse code's size is not its information: compare with PCA at the units in use.
        codes = ins.encode(model, test.x)
        active = float(np.mean(np.sum(np.abs(codes) > SPARSE_ACTIVE, axis=1)))
        small = ins.pca_baseline(train_part.x, test.x, max(1, round(active)))
        table += (
            f"\n| PCA at the units in use ({active:.1f} active on average) | "
            f"{small.components} | {small.mse:.5f} |"
        )
        note = (
            " The code is **sparse**: a unit counts as active above "
            f"{SPARSE_ACTIVE}, and only {active:.1f} of {code} are on average, so PCA with that "
            "many components is the fairer comparison."
        )
    elif kind in ("binary", "discrete"):
        note = (
            f" The code is **{kind}**: {code} units carry a few bits each, while PCA keeps "
            f"{base.components} real numbers, so PCA has far more room; matching it is already "
            "good compression."
        )
    caption = (
        f"{table}\n\nOn {len(test)} held-out samples the model is **{better}** PCA keeping "
        f"{base.components} components ({base.explained:.0%} of the variance). PCA is the best "
        "linear code of that size; an autoencoder earns its keep by beating it with non-linear "
        f"layers.{note} Rows: the inputs, the model's reconstructions, PCA's."
    )
    return img, caption
