import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from skfewshot import PrototypicalClassifier
from skfewshot.model_selection import EpisodeSampler, EpisodicSplit, tune_per_setting


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


# -- tune_per_setting: test-time parameters chosen per setting, by episodes ---------------

TUNE_EPISODES = dict(n_query=5, n_episodes=8, random_state=0)


def test_tune_per_setting_chooses_the_best_candidate_of_each_setting(digits):
    X, y = digits
    grid = {"distance": ["sqeuclidean", "cosine"], "transductive": [False, True]}
    result = tune_per_setting(
        PrototypicalClassifier(), X, y, grid, settings=[(5, 1), (3, 2)], **TUNE_EPISODES
    )
    assert sorted(result) == [(3, 2), (5, 1)]
    for tuned in result.values():
        assert sorted(tuned) == ["accuracy", "cv_results", "params"]
        cv_results = tuned["cv_results"]
        assert len(cv_results["params"]) == 4  # the grid's product
        assert "split7_test_score" in cv_results and "split8_test_score" not in cv_results
        # GridSearchCV's choice: the first best mean score in the grid's order.
        best = int(np.argmax(cv_results["mean_test_score"]))
        assert tuned["params"] == cv_results["params"][best]
        assert tuned["accuracy"] == cv_results["mean_test_score"][best]
        assert set(tuned["params"]) == set(grid) and 0 <= tuned["accuracy"] <= 1


def test_tune_per_setting_same_random_state_same_result(digits):
    X, y = digits
    grid = [{"distance": ["sqeuclidean", "cosine"]}, {"transductive": [True]}]
    first, second = (
        tune_per_setting(PrototypicalClassifier(), X, y, grid, **TUNE_EPISODES) for _ in range(2)
    )
    assert sorted(first) == sorted(second) == [(5, 1)]
    assert first[5, 1]["params"] == second[5, 1]["params"]
    assert first[5, 1]["accuracy"] == second[5, 1]["accuracy"]
    for key in ("mean_test_score", *(f"split{i}_test_score" for i in range(8))):
        np.testing.assert_array_equal(
            first[5, 1]["cv_results"][key], second[5, 1]["cv_results"][key]
        )


def test_tune_per_setting_embeds_once_unless_the_grid_sets_the_encoder(digits, mlp, monkeypatch):
    from skfewshot.model_selection import _evaluate

    X, y = digits
    calls, original = [], _evaluate._embedded_once

    def embedded_once(estimator, X):
        calls.append(len(X))
        return original(estimator, X)

    monkeypatch.setattr(_evaluate, "_embedded_once", embedded_once)
    clf = PrototypicalClassifier(mlp)
    settings = [(5, 1), (5, 2)]
    tune_per_setting(
        clf, X, y, {"distance": ["sqeuclidean", "cosine"]}, settings=settings, **TUNE_EPISODES
    )
    assert calls == [len(X)]  # once, for every setting and candidate
    tune_per_setting(clf, X, y, {"encoder": [mlp]}, settings=settings, **TUNE_EPISODES)
    tune_per_setting(clf, X, y, {"distance": ["cosine"]}, embed_once=False, **TUNE_EPISODES)
    assert calls == [len(X)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(settings=[]), r"settings must be a non-empty list of \(n_way, n_shot\) pairs"),
        (dict(settings=(5, 1)), r"or \[\(5, 1\)\] for one setting; got \(5, 1\)"),
        (dict(settings=[(5, 0)]), r"n_way >= 2 and n_shot >= 1"),
        (dict(settings=[(1, 1)]), r"n_way >= 2 and n_shot >= 1"),
        (dict(settings=[(5, 1, 15)]), r"pairs of integers"),
        (dict(settings=[(5.0, 1)]), r"pairs of integers"),
        (dict(param_grid={}), r"param_grid names no parameter: give at least one"),
        (dict(param_grid=[]), r"param_grid names no parameter"),
        (dict(param_grid=[{}]), r"param_grid names no parameter"),
        (dict(param_grid="distance"), r"param_grid must be a dict .*; got a str"),
        (dict(param_grid={"distance": []}), r"need to be a non-empty sequence"),
    ],
)
def test_tune_per_setting_bad_arguments_raise_clear_errors(kwargs, message, digits):
    X, y = digits
    kwargs = {"param_grid": {"distance": ["cosine"]}, **kwargs}
    with pytest.raises(ValueError, match=message):
        tune_per_setting(PrototypicalClassifier(), X, y, **TUNE_EPISODES, **kwargs)
