"""Built-in applications: uses of a trained model, each registered like any plugin."""
