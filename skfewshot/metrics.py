"""Metrics for few-shot evaluation."""

import numpy as np
from scipy import stats


def mean_confidence_interval(scores, confidence=0.95):
    """Mean of episode scores and the half-width of its confidence interval.

    The few-shot evaluation protocol reports the mean accuracy over many
    episodes (600 is customary) with a 95% confidence interval,
    ``mean ± t * std / sqrt(n)`` with Student's t quantile.

    Parameters
    ----------
    scores : array-like of shape (n_episodes,)
        One score per episode, e.g. the output of
        :func:`~sklearn.model_selection.cross_val_score` with
        :class:`~skfewshot.model_selection.EpisodicSplit`.
    confidence : float, default=0.95
        Confidence level, in (0, 1).

    Returns
    -------
    mean : float
        Mean score.
    half_width : float
        Half-width of the confidence interval; NaN for a single score.

    Examples
    --------
    >>> from skfewshot.metrics import mean_confidence_interval
    >>> mean, h = mean_confidence_interval([0.8, 0.9, 1.0])
    >>> round(mean, 3), round(h, 3)
    (0.9, 0.248)
    """
    scores = np.asarray(scores, dtype=float).ravel()
    if scores.size == 0:
        raise ValueError("mean_confidence_interval needs at least one score.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("mean_confidence_interval: scores contain NaN or infinity.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    mean = float(scores.mean())
    if scores.size == 1:
        return mean, float("nan")
    sem = scores.std(ddof=1) / np.sqrt(scores.size)
    return mean, float(sem * stats.t.ppf((1 + confidence) / 2, scores.size - 1))
