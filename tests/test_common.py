"""scikit-learn's estimator checks over every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import TinyEncoder, expected_failed_checks
from skfewshot import EmbeddingTransformer, PrototypicalClassifier

ESTIMATORS = [
    PrototypicalClassifier(),
    PrototypicalClassifier(TinyEncoder()),
    PrototypicalClassifier(distance="cosine"),
    EmbeddingTransformer(),
    EmbeddingTransformer(TinyEncoder()),
]

# conftest.expected_failed_checks gives every expected failure with its reason.


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
