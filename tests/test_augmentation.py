"""Random affine distortions of training images, seeded like the episodes."""

import numpy as np
import pytest
import torch
from methods import tiny_learner

from skfewshot.datasets import RandomAffine
from skfewshot.nn import Conv4


def _bars(n=6, size=16):
    images = torch.zeros(n, 1, size, size)
    images[:, :, 4:12, 7:9] = 1
    return images


def test_no_distortion_is_the_identity_and_same_rng_same_distortions():
    images = _bars()
    still = RandomAffine(rotation=0, shear=0, scale=0, translate=0)
    torch.testing.assert_close(still(images, np.random.RandomState(0)), images)
    a = RandomAffine()(images, np.random.RandomState(1))
    b = RandomAffine()(images, np.random.RandomState(1))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, RandomAffine()(images, np.random.RandomState(2)))
    assert not torch.allclose(a[0], a[1])  # one distortion per sample


def test_each_distortion_alone():
    images = _bars(n=1)
    rng = np.random.RandomState(0)
    shifted = RandomAffine(rotation=0, shear=0, scale=0, translate=0.25)(images, rng)
    # A shift keeps the bar's shape: the same mass, away from the centre.
    assert shifted.sum().item() == pytest.approx(images.sum().item(), rel=0.05)
    theta = RandomAffine(rotation=30, shear=0, scale=0, translate=0).matrices(1, rng)[0]
    assert np.allclose(theta[:, :2] @ theta[:, :2].T, np.eye(2))  # a rotation
    assert abs(np.degrees(np.arctan2(theta[1, 0], theta[0, 0]))) <= 30


def test_parameter_and_input_errors():
    with pytest.raises(ValueError, match="RandomAffine: rotation must be a positive number"):
        RandomAffine(rotation=-1)
    with pytest.raises(ValueError, match="RandomAffine: scale must be a positive number"):
        RandomAffine(scale="big")
    with pytest.raises(ValueError, match="distorts images of shape"):
        RandomAffine()(torch.zeros(3, 64), np.random.RandomState(0))


def test_learners_train_on_distorted_episodes_deterministically(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    conv = {
        "encoder": Conv4,
        "encoder__hidden_channels": 8,
        "encoder__out_channels": 8,
        "encoder__pooled_blocks": 3,
    }

    def weights(**params):
        learner = tiny_learner("prototypical", conv, **params).fit(images[y < 6], y[y < 6])
        return learner.module_.state_dict()

    plain, a, b = (
        weights(),
        weights(augmentation=RandomAffine()),
        weights(augmentation=RandomAffine()),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], plain[k]) for k in a)
    pretrained = tiny_learner("pretraining", conv, augmentation=RandomAffine())
    assert pretrained.fit(images[y < 6], y[y < 6]).history[-1, "train_loss"] > 0
    with pytest.raises(TypeError, match="augmentation must be a callable"):
        tiny_learner("prototypical", augmentation="affine").fit(X, y)
