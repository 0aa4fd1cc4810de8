"""scikit-learn's estimator checks over every public estimator."""

import test_gradient
import test_matching
import test_relation
import test_siamese
from conftest import TinyEncoder, expected_failed_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfewshot import EmbeddingTransformer, PrototypicalClassifier

# Each method's test module lists its estimators with the tiny encoders and
# comparators they need; the checks run over all of them here.
ESTIMATORS = [
    PrototypicalClassifier(),
    PrototypicalClassifier(TinyEncoder()),
    PrototypicalClassifier(distance="cosine"),
    EmbeddingTransformer(),
    EmbeddingTransformer(TinyEncoder()),
    *test_matching.ESTIMATORS,
    *test_relation.ESTIMATORS,
    *test_siamese.ESTIMATORS,
    *test_gradient.ESTIMATORS,
]

# conftest.expected_failed_checks gives every expected failure with its reason.


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
