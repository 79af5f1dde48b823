"""aelab: a local lab for the autoencoder family."""

__version__ = "0.1.0"
