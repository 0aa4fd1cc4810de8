import numpy as np
import pytest
from scipy import stats

from skfewshot.metrics import mean_confidence_interval


def test_matches_student_t_interval():
    rng = np.random.RandomState(0)
    scores = rng.uniform(0.6, 1.0, size=600)
    mean, half = mean_confidence_interval(scores)
    low, high = stats.t.interval(0.95, len(scores) - 1, loc=scores.mean(), scale=stats.sem(scores))
    assert mean == pytest.approx(scores.mean())
    assert half == pytest.approx((high - low) / 2)
    assert mean_confidence_interval(scores, confidence=0.99)[1] > half


def test_bad_input():
    with pytest.raises(ValueError, match="at least one score"):
        mean_confidence_interval([])
    with pytest.raises(ValueError, match="NaN"):
        mean_confidence_interval([0.5, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        mean_confidence_interval([0.5, 0.6], confidence=1.5)
    assert np.isnan(mean_confidence_interval([0.5])[1])
