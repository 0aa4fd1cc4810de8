"""Accuracy of a saved encoder's embeddings under scikit-learn post-processing pipelines.

Loads a classifier saved by ``skfewshot benchmark --output`` (a
``PrototypicalClassifier`` whose ``encoder`` is the trained torch module),
takes the base and novel classes exactly as ``skfewshot benchmark`` does with
the same data flags (``--dataset``, ``--protocol``, ``--validation``,
``--image-size``, ``--random-state``), embeds them once with
``EmbeddingTransformer`` and evaluates N-way K-shot episodes of the novel
classes with pipelines made of scikit-learn parts (:func:`pipelines`):

* ``prototypes``: nearest prototype on the raw embeddings (the reference);
* ``l2``: ``Normalizer`` then nearest prototype;
* ``centered_l2``: SimpleShot's CL2N (Wang et al. 2019), the embeddings
  centred on the mean *base-class* embedding (a ``StandardScaler(with_std=False)``
  fitted on the base embeddings and kept fixed by ``FrozenEstimator``), then
  ``Normalizer``, then nearest prototype;
* ``logistic_regression``: ``Normalizer`` then ``LogisticRegression`` on the
  support set (Tian et al. 2020).

With ``--test-time-augmentation N`` every image (base and novel) is embedded
as the mean over itself and N fixed random affine distortions of it
(:class:`skfewshot.nn.TestTimeAugmentation`).

Every pipeline sees the same episodes.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/embedding_postprocessing.py \\
        benchmarks/results/pretraining.joblib --protocol lake \\
        --out benchmarks/results/pretraining_postprocessing.json
"""

import argparse
import json
import time

import joblib
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot._cli import build_parser
from skfewshot._cli._benchmark import load_data as cli_load_data
from skfewshot.model_selection import evaluate_episodes
from skfewshot.nn import TestTimeAugmentation

NAMES = ("prototypes", "l2", "centered_l2", "logistic_regression")


def pipelines(Z_base, *, C=1.0, max_iter=1000):
    """The post-processing pipelines, by name, each made of scikit-learn parts.

    Parameters
    ----------
    Z_base : array-like of shape (n_samples, n_features) or None
        Embeddings of the base (meta-training) classes: their mean centres
        the embeddings of ``"centered_l2"``, fixed once and for all. None
        leaves ``"centered_l2"`` out.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression (1.0, the
        default of scikit-learn, as in Tian et al. 2020).
    max_iter : int, default=1000
        Iterations of the logistic regression's lbfgs solver.

    Returns
    -------
    pipelines : dict of str to estimator
        ``"prototypes"``, ``"l2"``, ``"centered_l2"`` and
        ``"logistic_regression"``; each is a classifier to fit on a support
        set of embeddings.
    """
    estimators = {
        "prototypes": PrototypicalClassifier(encoder=None),
        "l2": make_pipeline(Normalizer(), PrototypicalClassifier(encoder=None)),
        "logistic_regression": make_pipeline(
            Normalizer(), LogisticRegression(C=C, max_iter=max_iter, random_state=0)
        ),
    }
    if Z_base is not None:
        centering = FrozenEstimator(StandardScaler(with_std=False).fit(Z_base))
        estimators["centered_l2"] = make_pipeline(
            centering, Normalizer(), PrototypicalClassifier(encoder=None)
        )
    return {name: estimators[name] for name in NAMES if name in estimators}


def _names(text):
    names = text.split(",")
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown pipelines {unknown}; choose among {NAMES}")
    return names


def _ints(text):
    return [int(v) for v in text.split(",")]


def build_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a classifier saved by `skfewshot benchmark --output`")
    parser.add_argument("--dataset", choices=["omniglot", "digits"], default="omniglot")
    parser.add_argument("--protocol", choices=["lake", "vinyals"], default="lake")
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--pipelines",
        type=_names,
        default=list(NAMES),
        help=f"comma-separated subset of {','.join(NAMES)} (default: all)",
    )
    parser.add_argument(
        "--ways", type=_ints, default=None, help="test ways (default 5,20; 5,10 on digits)"
    )
    parser.add_argument("--shots", type=_ints, default=[1, 5])
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--query", type=int, default=15)
    parser.add_argument(
        "--test-time-augmentation",
        type=int,
        default=0,
        metavar="N_VIEWS",
        help="embed each image as the mean over itself and N_VIEWS fixed random affine "
        "distortions (skfewshot.nn.TestTimeAugmentation); default 0: off",
    )
    parser.add_argument("--C", type=float, default=1.0, help="the logistic regression's C")
    parser.add_argument("--device", default="cpu", help="where the encoder embeds")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def load_data(args):
    """Base and novel samples of ``skfewshot benchmark`` with the same data flags."""
    cli = ["benchmark", "--dataset", args.dataset, "--protocol", args.protocol]
    cli += ["--image-size", str(args.image_size), "--random-state", str(args.random_state)]
    cli += [] if args.data_home is None else ["--data-home", args.data_home]
    cli += ["--validation"] if args.validation else []
    cli += ["--no-download"] if args.no_download else []
    X_base, y_base, X_novel, y_novel, _ = cli_load_data(build_parser().parse_args(cli))
    return X_base, y_base, X_novel, y_novel


def main(argv=None):
    args = build_args(argv)
    ways = args.ways or ([5, 20] if args.dataset == "omniglot" else [5, 10])
    clf = joblib.load(args.model)
    X_base, _, X_novel, y_novel = load_data(args)
    encoder = clf.encoder
    if args.test_time_augmentation:
        encoder = TestTimeAugmentation(
            encoder, n_views=args.test_time_augmentation, random_state=args.random_state
        )
    embedder = EmbeddingTransformer(encoder, device=args.device).fit(X_base[:1])
    Z_novel = embedder.transform(X_novel)
    # Only SimpleShot's centring needs the base classes' embeddings.
    Z_base = embedder.transform(X_base) if "centered_l2" in args.pipelines else None
    estimators = pipelines(Z_base, C=args.C)
    rows = []
    for n_way in ways:
        for n_shot in args.shots:
            for name in args.pipelines:
                start = time.perf_counter()
                result = evaluate_episodes(
                    estimators[name],
                    Z_novel,
                    y_novel,
                    n_way=n_way,
                    n_shot=n_shot,
                    n_query=args.query,
                    n_episodes=args.episodes,
                    random_state=args.random_state,
                )
                rows.append(
                    {
                        "pipeline": name,
                        "n_way": n_way,
                        "n_shot": n_shot,
                        "accuracy": 100 * result["accuracy"],
                        "ci95": 100 * result["ci95"],
                        "seconds": time.perf_counter() - start,
                    }
                )
    print(
        f"{args.dataset}"
        + (f" ({args.protocol} protocol)" if args.dataset == "omniglot" else "")
        + f": {len(np.unique(y_novel))} "
        + ("validation" if args.validation else "novel")
        + f" classes, {args.episodes} episodes of {args.query} queries per class "
        f"(accuracy %, mean ± 95% CI), {Z_novel.shape[1]}-d embeddings"
        + (
            f", test-time augmentation over {args.test_time_augmentation} views"
            if args.test_time_augmentation
            else ""
        )
    )
    settings = [(w, s) for w in ways for s in args.shots]
    print(f"{'pipeline':<20}" + "".join(f"{f'{w}-way {s}-shot':>16}" for w, s in settings))
    for name in args.pipelines:
        cells = {
            (r["n_way"], r["n_shot"]): f"{r['accuracy']:.2f} ± {r['ci95']:.2f}"
            for r in rows
            if r["pipeline"] == name
        }
        print(f"{name:<20}" + "".join(f"{cells[k]:>16}" for k in settings))
    result = {
        "benchmark": "embedding_postprocessing",
        "model": args.model,
        "classifier": repr(clf),
        "embedding_dim": int(Z_novel.shape[1]),
        "pipelines": {name: repr(estimators[name]) for name in args.pipelines},
        "results": rows,
        "args": vars(args),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
