"""Matching Networks: a minimal hand-written PyTorch loop and the equivalent skfewshot learner.

``handwritten_loop`` is what a practitioner writes by hand for Matching
Networks with full context embeddings (Vinyals et al. 2016): Conv4, a
bidirectional LSTM over the support embeddings, an attention LSTM with 5
read steps over each query, softmax attention over cosine similarities and
the negative log-likelihood of the attention-weighted support labels,
trained with Adam (lr 1e-3). It draws the same episodes as the learner
(``EpisodeSampler`` with ``np.random.RandomState(seed)``) and puts its
convolution weights in channels-last format as skfewshot does, so that a
side-by-side timing isolates the framework's overhead. ``learner`` returns
the skfewshot :class:`MatchingLearner` configured identically.
"""

import numpy as np
import torch
from torch import nn

from skfewshot._torch_utils import channels_last
from skfewshot.meta import MatchingLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4

EMBEDDING_DIM = 64  # Conv4 on 28x28 images
READ_STEPS = 5


def handwritten_loop(X, y, n_episodes, seed, n_way=20, n_shot=5, n_query=5):
    """Meta-train Matching Networks (FCE) on ``n_episodes`` episodes of ``(X, y)`` by hand."""
    torch.manual_seed(seed)
    d = EMBEDDING_DIM
    encoder = channels_last(Conv4())
    support_lstm = nn.LSTM(d, d, bidirectional=True)
    query_lstm = nn.LSTMCell(2 * d, d)
    modules = nn.ModuleList([encoder, support_lstm, query_lstm])
    optimizer = torch.optim.Adam(modules.parameters(), lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(seed)
    X = torch.from_numpy(X)
    modules.train()
    for _ in range(n_episodes):
        support, query, support_labels, query_labels = sampler.sample(rng)  # support by class
        z = encoder(X[torch.from_numpy(np.concatenate([support, query]))])
        s, q = z[: len(support)], z[len(support) :]
        states, _ = support_lstm(s.unsqueeze(1))
        g = s + states[:, 0, :d] + states[:, 0, d:]
        h, c = q, torch.zeros_like(q)
        for _ in range(READ_STEPS):
            readout = torch.softmax(h @ g.T, dim=1) @ g
            h, c = query_lstm(torch.cat([q, readout], dim=1), (h, c))
            h = h + q
        cosine = nn.functional.normalize(h, dim=1) @ nn.functional.normalize(g, dim=1).T
        one_hot = nn.functional.one_hot(torch.from_numpy(support_labels), n_way).float()
        proba = torch.softmax(cosine, dim=1) @ one_hot
        loss = nn.functional.nll_loss(proba.clamp_min(1e-12).log(), torch.from_numpy(query_labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return modules


def learner(n_episodes, seed, n_way=20, n_shot=5, n_query=5):
    """The skfewshot learner of the same model and training (call ``.fit(X, y)``)."""
    return MatchingLearner(
        Conv4,
        fce=True,
        read_steps=READ_STEPS,
        comparator__embedding_dim=EMBEDDING_DIM,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        lr=1e-3,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
