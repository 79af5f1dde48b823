"""User-facing errors: each carries one readable sentence, shown without a traceback."""


class AelabError(Exception):
    """An error whose message is one sentence meant for the user."""


class ParamsError(AelabError):
    """A hyperparameter or training setting is invalid."""


class DataError(AelabError):
    """A data file or dataset name cannot be used."""


class PluginError(AelabError):
    """A plugin failed to load or registered something invalid."""


class TrainingError(AelabError):
    """Training could not go on (for example a NaN loss)."""


class RunError(AelabError):
    """A saved run is missing or malformed."""


class ExportError(AelabError):
    """An ONNX export failed or did not validate."""
