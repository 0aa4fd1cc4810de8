"""scikit-learn's estimator checks over every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import TinyEncoder
from skfewshot import EmbeddingTransformer, PrototypicalClassifier

ESTIMATORS = [
    PrototypicalClassifier(),
    PrototypicalClassifier(TinyEncoder()),
    PrototypicalClassifier(distance="cosine"),
    EmbeddingTransformer(),
    EmbeddingTransformer(TinyEncoder()),
]

# Every expected failure carries its reason.
_TORCH_HASH = (
    "joblib.hash of a torch tensor differs from the hash of its deepcopy (the pickled "
    "storage differs), so this check sees a changed encoder although fit leaves it "
    "untouched; test_estimators.py::test_fit_leaves_encoder_untouched checks that directly."
)
EXPECTED_FAILED_CHECKS = {
    repr(est): {"check_estimators_overwrite_params": _TORCH_HASH}
    for est in ESTIMATORS
    if est.encoder is not None
}


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(repr(est), {})
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
