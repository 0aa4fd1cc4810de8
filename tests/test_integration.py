"""Real meta-training on Omniglot (Lake protocol, a short budget)."""

import numpy as np
import pytest
from conftest import _data_home
from sklearn.model_selection import cross_val_score

from skfewshot import EmbeddingTransformer
from skfewshot.datasets import fetch_omniglot, rotate_classes
from skfewshot.meta import PrototypicalLearner
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import Conv4

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake_protocol():
    home = _data_home()
    if home is None:
        pytest.skip("Omniglot not found: set SKFEWSHOT_DATA to a folder holding omniglot/")
    kwargs = dict(data_home=home, download_if_missing=False, return_X_y=True)
    X, y = rotate_classes(*fetch_omniglot("background", **kwargs))
    return X, y, *fetch_omniglot("evaluation", **kwargs)


def test_protonet_meta_training_on_omniglot(lake_protocol):
    X_base, y_base, X_novel, y_novel = lake_protocol
    learner = PrototypicalLearner(
        Conv4,
        n_way=20,
        n_shot=5,
        n_query=5,
        episodes_per_epoch=100,
        max_epochs=3,
        random_state=0,
        verbose=0,
    )
    learner.fit(X_base, y_base)
    Z = EmbeddingTransformer(learner.encoder_).fit_transform(X_novel)
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=200, random_state=0)
    scores = cross_val_score(learner.to_classifier(encoder=None), Z, y_novel, cv=cv)
    mean, half = mean_confidence_interval(scores)
    # 300 episodes already put 5-way 1-shot far above chance (20 %).
    assert mean > 0.85, (mean, half)
    assert np.all(np.isfinite(learner.history_[:, "train_loss"]))
