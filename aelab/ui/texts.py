"""The lab's explanations: the page's introduction, primer and picture captions."""

INTRO = """\
# aelab · the autoencoder lab
An autoencoder squeezes its input through a small **code** and learns to rebuild it; what it keeps
in the code is what it learned about the data. **Build** a model from its hyperparameters,
**train** it live, look at its **latent space**, and **export** it to ONNX. Every button is also an
API endpoint (see *Use via API* at the bottom of the page).
"""

GRID_CAPTION = (
    "*Rows, top to bottom: held-out originals; the noisy inputs the model trains on (only when the "
    "noise level is above 0); the model's reconstructions. A model that only generates shows real "
    "samples above generated ones. The picture refreshes every few seconds while training.*"
)
LOSS_CAPTION = (
    "*One line per loss term the model reports (reconstruction, penalty or KL, generator and "
    "discriminator), on the training batches (· train) and the held-out data after each epoch "
    "(· validation, the paler line of the same colour). Validation well above train means "
    "the model is memorising. Terms five times smaller than the largest (a KL beside a summed "
    "reconstruction error, a sparsity penalty) get a second panel on their own scale, so no "
    "curve is flattened against the axis.*"
)
PRIMER = """\
**The parts.** An *encoder* f maps an input x to a *code* z = f(x) (also called the bottleneck or
latent representation); a *decoder* g maps the code back to a reconstruction x̂ = g(z). Training
minimises the reconstruction error between x and x̂; no labels are needed.

**Why it learns anything.** Left unconstrained, a network can simply copy its input. An
*undercomplete* model (code smaller than the input) cannot: it must keep what matters and drop
the rest. A digit 1 is mostly a straight stroke and a 0 a loop, so a few numbers can say which is
which; random noise, with no structure, cannot be compressed and will not reconstruct well.

**Bigger is not always better.** More layers, more units per layer and, above all, a larger code
let the model learn richer codes, but a model that is too powerful learns the identity: perfect
on training data and useless on new inputs. *Overcomplete* models (code at least as large as the
input) need a regulariser instead of a bottleneck: noise on the input (*denoising*), few active
code units (*sparse*), codes that barely move when the input moves (*contractive*).

**Generating new data.** A *VAE* encodes each input as a distribution and pulls those towards a
standard normal prior (the KL term), so decoding a random normal code gives a new sample. A *GAN*
has no encoder: a generator turns noise into samples and a discriminator learns to tell them from
real data, each training against the other.

**How to use the lab.** Pick a model and data, adjust the hyperparameters (each one explains
itself), press **Train**, and watch the curves and reconstructions. Then map the codes, compare
with PCA (the best *linear* code of the same size) and export to ONNX.
"""

LATENT_HELP = """\
**Reading the latent space.** Each held-out sample is encoded and its code drawn as a point. With a
code of 2 units the plot is the code itself; above that it is a PCA projection (or t-SNE, slower,
which keeps neighbours together but distorts distances). Similar inputs should land together.
"""

# Tiles of small images (8x8 digits) are scaled up by the browser: keep their pixels sharp.
CSS = ".pixels img { image-rendering: pixelated; }"


def grid_title(capabilities: set[str], series: bool) -> tuple[str, str]:
    """The live picture's label and caption for a model with these capabilities."""
    if series:
        return (
            "The series along its time axis: original, reconstruction, error per step",
            "*Each channel of the whole series with the model's reconstruction (windows put back "
            "on the time axis, overlaps averaged), and below the squared error per time step: "
            "where the model fails along the series. Refreshes every few seconds while "
            "training.*",
        )
    if "reconstruct" in capabilities:
        return (
            "Held-out originals, corrupted inputs (models that add noise) and reconstructions",
            GRID_CAPTION,
        )
    return (
        "Real samples (top) and generated ones (bottom)",
        "*Top: held-out real samples. Bottom: samples the generator makes from random codes "
        "drawn from its prior; they should look like the top row and differ from each other. "
        "Refreshes every few seconds while training.*",
    )
