"""Test-time augmentation: embeddings averaged over fixed distortions, inductive and seeded."""

import copy
import io
import json

import joblib
import numpy as np
import pytest
import torch
from torch import nn

from skfewshot import PrototypicalClassifier
from skfewshot._cli import main
from skfewshot.datasets import RandomAffine
from skfewshot.model_selection import evaluate_episodes
from skfewshot.nn import Conv4, TestTimeAugmentation


def _encoder(seed=0):
    torch.manual_seed(seed)
    return Conv4(1, hidden_channels=8, out_channels=8)


def test_an_image_embedding_depends_on_the_image_alone():
    module = TestTimeAugmentation(_encoder(), n_views=4).eval()
    images = torch.rand(7, 1, 28, 28)
    with torch.no_grad():
        batch = module(images)
        alone = torch.cat([module(images[i : i + 1]) for i in range(len(images))])
        reversed_ = module(images.flip(0)).flip(0)
    torch.testing.assert_close(batch, alone)
    torch.testing.assert_close(batch, reversed_)


def test_mean_over_the_image_and_its_views():
    encoder = _encoder().eval()
    module = TestTimeAugmentation(encoder, n_views=3, random_state=5).eval()
    images = torch.rand(4, 1, 28, 28)
    rng = np.random.RandomState(5)
    theta = torch.as_tensor(RandomAffine().matrices(3, rng), dtype=torch.float32)
    with torch.no_grad():
        expected = encoder(images)
        for t in theta:
            grid = nn.functional.affine_grid(t.expand(4, 2, 3), [4, 1, 28, 28], align_corners=False)
            expected += encoder(nn.functional.grid_sample(images, grid, align_corners=False))
        torch.testing.assert_close(module(images), expected / 4)
    # Without distortions the mean is the encoder's own embedding.
    still = RandomAffine(rotation=0, shear=0, scale=0, translate=0)
    identity = TestTimeAugmentation(encoder, still, n_views=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(identity(images), encoder(images))


def test_seeded_training_mode_is_the_encoder_and_it_pickles():
    encoder = _encoder()
    a = TestTimeAugmentation(encoder, random_state=1)
    b = TestTimeAugmentation(encoder, random_state=1)
    c = TestTimeAugmentation(encoder, random_state=2)
    torch.testing.assert_close(a.views, b.views)
    assert a.views.shape == (8, 2, 3) and not torch.allclose(a.views, c.views)
    images = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(a.train()(images), encoder.train()(images))
    a.eval()
    buffer = io.BytesIO()
    joblib.dump(a, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), a(images))
        torch.testing.assert_close(copy.deepcopy(a)(images), a(images))


def test_parameter_and_input_errors():
    with pytest.raises(ValueError, match="TestTimeAugmentation: n_views"):
        TestTimeAugmentation(_encoder(), n_views=0)
    with pytest.raises(TypeError, match="matrices\\(n, rng\\) method"):
        TestTimeAugmentation(_encoder(), augmentation="RandomAffine")
    flat = TestTimeAugmentation(nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match="distorts images of shape"):
        flat(torch.rand(3, 4))


def test_a_classifier_with_it_stays_inductive(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    clf = PrototypicalClassifier(TestTimeAugmentation(encoder, n_views=4))
    support = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(10)])
    query = np.setdiff1d(np.arange(len(y)), support)[:50]
    clf.fit(images[support], y[support])
    whole = clf.predict_proba(images[query])
    one_by_one = np.concatenate([clf.predict_proba(images[[i]]) for i in query])
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-5, atol=1e-6)
    result = evaluate_episodes(clf, images, y, n_way=5, n_shot=5, n_episodes=20, random_state=0)
    assert result["accuracy"] > 0.5  # chance: 0.2


def test_cli_flag(tmp_path, capsys):
    out, js = tmp_path / "clf.joblib", tmp_path / "result.json"
    common = ["benchmark", "--dataset", "digits", "--episodes", "4", "--episodes-per-epoch", "2"]
    common += ["--test-episodes", "5", "--ways", "5", "--shots", "1", "--quiet"]
    main([*common, "--test-time-augmentation", "3", "--output", str(out), "--json", str(js)])
    assert "test-time augmentation over 3 views" in capsys.readouterr().out
    clf = joblib.load(out)
    assert isinstance(clf.encoder, TestTimeAugmentation) and clf.encoder.n_views == 3
    assert json.loads(js.read_text())["args"]["test_time_augmentation"] == 3
    # Bad uses are argparse-style errors (exit status 2), before any training.
    for flags, message in [
        (["--test-time-augmentation", "-1"], "number of views >= 0"),
        (["--method", "maml", "--test-time-augmentation", "2"], "does not classify by embeddings"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*common, *flags, "--output", "none"])
        assert exited.value.code == 2
        error = capsys.readouterr().err.splitlines()[-1]
        assert error.startswith("skfewshot benchmark: error: argument --test-time-augmentation")
        assert message in error
