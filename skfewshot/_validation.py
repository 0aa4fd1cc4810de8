"""Input validation shared by the few-shot estimators."""

import numpy as np
from sklearn.utils.validation import validate_data


def validate_X(estimator, X, y="no_validation", *, reset):
    """Validate the input of an estimator with an optional ``encoder``.

    Without an encoder the samples are feature vectors (2-D, float). With
    one, any per-sample shape the encoder takes is allowed (e.g. images
    (n, c, h, w)) and the data becomes float32. The per-sample shape is
    remembered at fit (``reset=True``) and enforced afterwards.
    """
    has_encoder = estimator.encoder is not None
    kwargs = dict(
        reset=reset,
        allow_nd=has_encoder,
        dtype=np.float32 if has_encoder else (np.float64, np.float32),
    )
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, **kwargs)
        out = X
    else:
        X, y = validate_data(estimator, X, y, **kwargs)
        out = X, y
    sample_shape = X.shape[1:]
    if reset:
        estimator._sample_shape = sample_shape
    elif sample_shape != estimator._sample_shape:
        raise ValueError(
            f"X has samples of shape {sample_shape}, but {type(estimator).__name__} "
            f"was fitted on samples of shape {estimator._sample_shape}."
        )
    return out
