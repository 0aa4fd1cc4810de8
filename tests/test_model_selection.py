import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from skfewshot import PrototypicalClassifier
from skfewshot.model_selection import EpisodeSampler, EpisodicSplit


def _labels(n_classes=6, per_class=10):
    return np.repeat(np.arange(n_classes), per_class)


def test_episodes_have_requested_structure():
    y = _labels()
    X = np.zeros((len(y), 2))
    cv = EpisodicSplit(n_way=4, n_shot=2, n_query=3, n_episodes=25, random_state=0)
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits() == 25
    for support, query in splits:
        assert len(np.intersect1d(support, query)) == 0
        s_classes, s_counts = np.unique(y[support], return_counts=True)
        q_classes, q_counts = np.unique(y[query], return_counts=True)
        assert len(s_classes) == 4 and np.all(s_counts == 2)
        np.testing.assert_array_equal(s_classes, q_classes)
        assert np.all(q_counts == 3)


def test_n_query_none_takes_all_remaining():
    y = np.array([0] * 5 + [1] * 7 + [2] * 3)
    cv = EpisodicSplit(n_way=3, n_shot=2, n_query=None, n_episodes=3, random_state=0)
    for support, query in cv.split(y, y):
        assert len(support) == 6
        assert sorted(np.bincount(y[query]).tolist()) == [1, 3, 5]
        assert len(np.union1d(support, query)) == len(y)


def test_same_random_state_same_episodes_and_int_seed_repeats():
    y = _labels(10, 8)
    a = list(EpisodicSplit(5, 1, 3, 10, random_state=1).split(y, y))
    b = list(EpisodicSplit(5, 1, 3, 10, random_state=1).split(y, y))
    c = list(EpisodicSplit(5, 1, 3, 10, random_state=2).split(y, y))
    for (sa, qa), (sb, qb) in zip(a, b):
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(qa, qb)
    assert any(not np.array_equal(sa, sc) for (sa, _), (sc, _) in zip(a, c))
    # Like ShuffleSplit: a RandomState instance gives new episodes on each call.
    cv = EpisodicSplit(5, 1, 3, 5, random_state=np.random.RandomState(0))
    first, second = list(cv.split(y, y)), list(cv.split(y, y))
    assert any(not np.array_equal(f[0], s[0]) for f, s in zip(first, second))


def test_only_eligible_classes_are_drawn():
    y = np.array([0] * 10 + [1] * 10 + [2] * 2 + [3] * 10)
    for support, _ in EpisodicSplit(3, 1, 5, 30, random_state=0).split(y, y):
        assert 2 not in y[support]


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_way=5), r"only 4 of the 4 classes qualify"),
        (dict(n_way=2, n_shot=8, n_query=5), r"at least 13 samples.*only 0 of the 4"),
        (dict(n_way=1), "n_way must be an integer >= 2"),
        (dict(n_shot=0), "n_shot must be an integer >= 1"),
        (dict(n_query=0), "n_query must be an integer >= 1 or None"),
        (dict(n_episodes=0), "n_episodes must be an integer >= 1"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, message):
    y = _labels(4, 10)
    cv = EpisodicSplit(**{"n_way": 2, "n_shot": 1, "n_query": 2, **params})
    with pytest.raises(ValueError, match=message):
        next(cv.split(y, y))


def test_split_needs_labels_and_matching_lengths():
    with pytest.raises(ValueError, match="needs the labels y"):
        next(EpisodicSplit().split(np.zeros((5, 1)), None))
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        next(EpisodicSplit().split(np.zeros((5, 1)), np.arange(4)))


def test_sampler_labels_are_episode_local():
    y = np.array(list("aabbccdd"))
    sampler = EpisodeSampler(y, n_way=3, n_shot=1, n_query=1)
    support, query, s_lab, q_lab = sampler.sample(np.random.RandomState(0))
    np.testing.assert_array_equal(s_lab, [0, 1, 2])
    np.testing.assert_array_equal(q_lab, [0, 1, 2])
    np.testing.assert_array_equal(y[support], y[query])


def test_cross_val_score_with_string_labels(digits):
    X, y = digits
    y = np.array([f"digit-{v}" for v in y])
    cv = EpisodicSplit(n_way=5, n_shot=5, n_query=10, n_episodes=20, random_state=0)
    scores = cross_val_score(PrototypicalClassifier(), X, y, cv=cv)
    assert scores.shape == (20,)
    assert scores.mean() > 0.8
