"""What an exported graph does, whatever it is called: one table for the models, the exporter,
the kit and the torch-free runtime (standard library only)."""

from __future__ import annotations

ROLES = ("autoencoder", "encoder", "decoder", "sampler", "critic", "other")
PRIORS = (None, "normal")  # what a graph's prior may be; "normal" is N(0, I)
# The role of a graph that does not declare one (plugins and exports from before roles).
ROLE_BY_NAME = {
    "autoencoder": "autoencoder",
    "encoder": "encoder",
    "decoder": "decoder",
    "generator": "sampler",
    "discriminator": "critic",
}
