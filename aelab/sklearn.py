"""scikit-learn estimators over the Python API: a transformer and an outlier detector.

    from aelab.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer

    codes = AutoencoderTransformer(params={"code_size": 4}, epochs=50).fit_transform(x)
    detector = AutoencoderOutlierDetector(contamination=0.05).fit(x_normal)
    detector.predict(x_new)  # +1 inlier, -1 outlier

Both take any registered model by id and its hyperparameters, train through
:func:`aelab.api.train` (no second engine) and use the trained model's verbs (``encode``,
``decode``, ``reconstruct``, ``anomaly_scores``). They follow scikit-learn's contract:
``__init__`` stores its arguments untouched, learned state ends in ``_``, ``clone`` works, and
they pass ``sklearn.utils.estimator_checks`` (see tests/test_sklearn.py).

Model hyperparameters live in one parameter, ``params`` (a dict), so ``get_params`` and
``clone`` see exactly the constructor's arguments. ``set_params`` also takes a hyperparameter
by its own name (``set_params(code_size=4)``, ``GridSearchCV(est, {"code_size": [4, 8]})``,
``pipe.set_params(ae__code_size=4)``): it is merged into a new ``params`` dict.

Scaling is aelab's (``aelab.from_array``): each column of X is mapped to [0, 1] by its range in
the training data and values beyond it are clipped (with ``image_shape``, one range for all
pixels); outputs come back in X's units.

The module is named like ``xgboost.sklearn`` and ``lightgbm.sklearn``; its imports are absolute,
so ``import sklearn`` here is scikit-learn.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    OutlierMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

# Training settings that are estimator parameters, passed to aelab.train under the same name.
SETTINGS = ("epochs", "batch_size", "lr", "optimizer", "seed", "device", "val_fraction")
FLOATS = [np.float64, np.float32]  # integers and objects become float64; float32 stays


class _AutoencoderEstimator(BaseEstimator):
    """What both estimators share: the parameters, training through the API, the inputs."""

    _needs: tuple[str, ...] = ()  # the model's verbs the estimator uses (ModelSpec.capabilities)

    def __init__(
        self,
        model: str = "autoencoder",
        params: dict[str, Any] | None = None,
        *,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: str = "adam",
        seed: int = 0,
        device: str = "cpu",
        val_fraction: float = 0.0,
        image_shape: tuple[int, ...] | None = None,
        verbose: bool = False,
    ):
        self.model = model
        self.params = params
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.seed = seed
        self.device = device
        self.val_fraction = val_fraction
        self.image_shape = image_shape
        self.verbose = verbose

    # -- parameters ----------------------------------------------------------------------------
    def set_params(self, **params: Any) -> _AutoencoderEstimator:
        """Set parameters; a model hyperparameter by its own name (``code_size=4``) goes into a
        new ``params`` dict, so ``get_params`` and ``clone`` still see only ``__init__``'s."""
        own = set(self._get_param_names())
        hyper = {k: v for k, v in params.items() if k not in own}
        super().set_params(**{k: v for k, v in params.items() if k in own})
        if hyper:
            known = self._hyperparameters()
            unknown = sorted(set(hyper) - set(known))
            if unknown:
                raise ValueError(
                    f"Invalid parameter(s) {unknown} for estimator {type(self).__name__}: "
                    f"valid ones are {sorted(own)} and the hyperparameters of model "
                    f"{self.model!r}: {sorted(known)}."
                )
            self.params = {**self._params(), **hyper}
        return self

    def _spec(self) -> Any:
        """The registered model's spec; ValueError for an unknown id."""
        from .errors import AelabError
        from .plugins import get_model

        if not isinstance(self.model, str):
            raise ValueError(f"model must be a registered model id, not {self.model!r}.")
        try:
            return get_model(self.model)
        except AelabError as exc:
            raise ValueError(str(exc)) from None

    def _hyperparameters(self) -> dict[str, Any]:
        """The model's hyperparameter fields (name -> pydantic field); ValueError if unknown."""
        return dict(self._spec().params.model_fields)

    def _params(self) -> dict[str, Any]:
        """``params`` as a dict (None is empty); ValueError for anything else."""
        if self.params is None:
            return {}
        if not isinstance(self.params, Mapping):
            raise ValueError(
                f"params must be a dict of the model's hyperparameters, not {self.params!r}."
            )
        return dict(self.params)

    # -- inputs --------------------------------------------------------------------------------
    def _sample_shape(self, n_features: int) -> tuple[int, ...] | None:
        """(C, H, W) of ``image_shape`` ((H, W) is one channel), checked against the features;
        None for flat data."""
        if self.image_shape is None:
            return None
        shape = tuple(self.image_shape) if isinstance(self.image_shape, (tuple, list)) else ()
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or not all(isinstance(s, Integral) and s > 0 for s in shape):
            raise ValueError(
                f"image_shape must be (height, width) or (channels, height, width), not "
                f"{self.image_shape!r}."
            )
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape {tuple(self.image_shape)} holds {int(np.prod(shape))} values, but "
                f"X has {n_features} feature(s)."
            )
        return tuple(int(s) for s in shape)

    def _samples(self, X: np.ndarray) -> np.ndarray:
        """Rows of X as the model's samples: flat, or images (N, C, H, W) with ``image_shape``."""
        shape = self._sample_shape(X.shape[1])
        return X if shape is None else X.reshape(len(X), *shape)

    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        """X as a finite 2-D float array (float32 kept, the rest float64); on fit, at least 2
        samples and n_features_in_ recorded, afterwards the same features required."""
        if not reset:
            check_is_fitted(self)
        return validate_data(
            self, X, reset=reset, dtype=FLOATS, ensure_min_samples=2 if reset else 1
        )

    # -- training ------------------------------------------------------------------------------
    def _val_fraction(self, n: int) -> float:
        """The validation share, 0 when it would leave no validation or < 2 training samples
        (small folds of a cross-validation)."""
        fraction = self.val_fraction
        if isinstance(fraction, Real) and 0 < fraction < 1:
            n_val = int(round(n * fraction))
            if n_val < 1 or n - n_val < 2:
                return 0.0
        return fraction

    def _fit(self, X: Any) -> np.ndarray:
        """Validate X, train the model on it through aelab.train, set ``trained_``; returns X."""
        from . import api
        from .errors import AelabError

        X = self._validate(X, reset=True)
        params, spec = self._params(), self._spec()
        known = sorted(spec.params.model_fields)
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"params has {unknown}, which are not hyperparameters of model {self.model!r}; "
                f"its hyperparameters are {known} (training settings such as epochs are "
                f"parameters of {type(self).__name__} itself)."
            )
        missing = [verb for verb in self._needs if verb not in spec.capabilities]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs a model that can {' and '.join(missing)}; "
                f"model {self.model!r} can {', '.join(spec.capabilities) or 'none of these'}."
            )
        settings = {name: getattr(self, name) for name in SETTINGS}
        settings["val_fraction"] = self._val_fraction(len(X))
        try:
            trained = api.train(
                self.model,
                self._samples(X),
                progress=bool(self.verbose),
                save=False,
                **settings,
                **params,
            )
        except AelabError as exc:  # sklearn's convention: bad parameters or data -> ValueError
            raise ValueError(
                f"{exc} (X has {X.shape[0]} sample(s) and {X.shape[1]} feature(s).)"
            ) from None
        if trained.status == "failed":
            raise ValueError(trained.done.message)
        if trained.status == "diverged":
            warnings.warn(trained.done.message, ConvergenceWarning, stacklevel=3)
        self.trained_ = trained
        return X

    def _verb(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A verb of the trained model (aelab.Trained), its aelab errors as ValueError."""
        from .errors import AelabError

        try:
            return getattr(self.trained_, name)(*args, **kwargs)
        except AelabError as exc:
            raise ValueError(str(exc)) from None


class AutoencoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, _AutoencoderEstimator
):
    """An autoencoder as a scikit-learn transformer: ``transform`` gives the codes,
    ``inverse_transform`` decodes codes back to X's units, ``score`` is minus the mean squared
    reconstruction error (higher is better).

    Parameters
    ----------
    model : str
        A registered model id (``aelab models`` lists them).
    params : dict or None
        The model's hyperparameters (``code_size``, ``layers``, ``nodes``, ...); each is also
        settable by its own name through ``set_params``.
    epochs, batch_size, lr, optimizer, seed, device, val_fraction
        Training settings, as in ``aelab.train`` (the batch never exceeds the sample count;
        the validation share is 0 where it would leave a part empty).
    image_shape : tuple or None
        (H, W) or (C, H, W): each row of X is an image, flattened in C order (for
        convolutional models, or one value range for all pixels).
    verbose : bool
        A progress bar while training.

    Attributes
    ----------
    trained_ : aelab.Trained
        The trained model and its run (history, losses, ``export()``...).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has string column names.
    """

    _needs = ("encode", "decode")

    def fit(self, X: Any, y: Any = None) -> AutoencoderTransformer:
        """Train the model on X (y is ignored)."""
        X = self._fit(X)
        self._n_features_out = self._verb("encode", self._samples(X[:1])).reshape(1, -1).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The codes of X, (n_samples, code units), in X's float dtype."""
        X = self._validate(X, reset=False)
        codes = self._verb("encode", self._samples(X))
        return codes.reshape(len(X), -1).astype(X.dtype, copy=False)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode codes back to rows in the units of the training data."""
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOATS)
        if codes.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {codes.shape[1]} features, but {type(self).__name__}'s codes have "
                f"{self._n_features_out}."
            )
        out = self._verb("decode", codes)
        return out.reshape(len(codes), -1).astype(codes.dtype, copy=False)

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean squared reconstruction error of X, in X's units (higher is better)."""
        X = self._validate(X, reset=False)
        rebuilt = self._verb("reconstruct", self._samples(X)).reshape(X.shape)
        return -float(np.mean((rebuilt.astype(np.float64) - X) ** 2))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class AutoencoderOutlierDetector(OutlierMixin, _AutoencoderEstimator):
    """An autoencoder as a scikit-learn outlier detector, trained on (mostly) normal data.

    ``score_samples`` is minus the anomaly score (higher = more normal, as in IsolationForest);
    ``decision_function = score_samples - offset_`` is negative for about the ``contamination``
    share of the training data, and ``predict`` gives -1 there (outliers), +1 elsewhere.

    Parameters
    ----------
    model, params, epochs, batch_size, lr, optimizer, seed, device, val_fraction, image_shape,
    verbose
        As for :class:`AutoencoderTransformer`.
    contamination : float
        The expected share of outliers in the training data, in (0, 0.5].
    anomaly_score : str
        Which anomaly score: ``auto`` (reconstruction error when the model reconstructs, else a
        GAN's critic), ``reconstruction``, ``elbo`` (a VAE) or ``critic`` (a GAN).

    Attributes
    ----------
    trained_ : aelab.Trained
    offset_ : float
        ``decision_function = score_samples - offset_``: the ``contamination`` percentile of
        the training data's ``score_samples``.
    threshold_ : float
        The same cut in anomaly-score units (``-offset_``), as in PyOD: a sample whose anomaly
        score (``-score_samples``) is above it is an outlier.
    n_features_in_ : int
    """

    def __init__(
        self,
        model: str = "autoencoder",
        params: dict[str, Any] | None = None,
        *,
        contamination: float = 0.1,
        anomaly_score: str = "auto",
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: str = "adam",
        seed: int = 0,
        device: str = "cpu",
        val_fraction: float = 0.0,
        image_shape: tuple[int, ...] | None = None,
        verbose: bool = False,
    ):
        super().__init__(
            model,
            params,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            seed=seed,
            device=device,
            val_fraction=val_fraction,
            image_shape=image_shape,
            verbose=verbose,
        )
        self.contamination = contamination
        self.anomaly_score = anomaly_score

    def fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """Train the model on X (y is ignored) and set the offset from X's scores."""
        c = self.contamination
        if isinstance(c, bool) or not isinstance(c, Real) or not 0 < c <= 0.5:
            raise ValueError(f"contamination must be a number in (0, 0.5], not {c!r}.")
        X = self._fit(X)
        self.offset_ = float(np.percentile(-self._anomaly_scores(X), 100.0 * c))
        self.threshold_ = -self.offset_
        return self

    def _anomaly_scores(self, X: np.ndarray) -> np.ndarray:
        """Anomaly scores of validated rows (higher = more anomalous), float64."""
        samples = self._samples(X)
        if self.anomaly_score == "auto":
            s = self._verb("anomaly_scores", samples)
        else:  # the anomaly application, for its choice of score
            s = self._verb("anomaly", samples, score=self.anomaly_score).scores
        return np.asarray(s, dtype=np.float64)

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the anomaly score of each sample: the lower, the more abnormal."""
        return -self._anomaly_scores(self._validate(X, reset=False))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers, -1 for outliers (decision_function < 0)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)
