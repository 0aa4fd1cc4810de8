"""``skfewshot benchmark``: load the data, meta-train, evaluate, print the table and save."""

import argparse
import json
import os
import sys
import time

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from skorch.callbacks import LRScheduler
from tabulate import tabulate

from .. import meta, nn
from .._files import write_atomically
from ..callbacks import TimeBudget
from ..model_selection import EpisodeSampler, evaluate_episodes, tune_per_setting
from ..model_selection._evaluate import _embedded_once, _sets_encoder
from ._checkpoint import BenchmarkCheckpoint, prepare_checkpoint_dir, training_settings
from ._console import (
    EpochLog,
    Interrupted,
    Run,
    TrainingProgress,
    is_terminal,
    line_writer,
    noting_sigint,
    progress_bar,
)
from ._params import (
    COMPONENTS,
    METHODS,
    SET_BY_FLAGS,
    UsageError,
    check_classifier_params,
    check_learner_params,
    check_tune_grid,
    named_class,
    saved_encoder,
)


def dataset_encoder(args):
    """The encoder parameters a data set needs: an MLP over the 64 pixels of the digits."""
    if args.dataset != "digits":
        return {}
    from ..nn import MLP

    return {"encoder": MLP, "encoder__in_features": 64}


def load_data(args, *, base=True):
    """Base (meta-training) and novel (test) data, and encoder parameters.

    With ``--validation`` the novel classes are validation classes carved
    from the base classes (never the test classes): held-out background
    characters (Lake protocol), the published validation split (Vinyals).
    ``base=False`` reads the novel classes only (the base set is None).
    """
    from ..datasets import fetch_omniglot, fetch_omniglot_vinyals, rotate_classes

    common = dict(
        data_home=args.data_home,
        image_size=args.image_size,
        download_if_missing=not args.no_download,
        return_X_y=True,
    )
    if args.dataset == "omniglot" and args.protocol == "vinyals":
        base_split, novel_split = ("train", "val") if args.validation else ("trainval", "test")
        X_base, y_base = fetch_omniglot_vinyals(base_split, **common) if base else (None, None)
        return (X_base, y_base, *fetch_omniglot_vinyals(novel_split, **common), {})
    if args.dataset == "omniglot":
        if not args.validation:
            novel = fetch_omniglot("evaluation", **common)
            if not base:
                return (None, None, *novel, {})
            return (*rotate_classes(*fetch_omniglot("background", **common)), *novel, {})
        # A fifth of the background characters, all their rotations held out.
        X, y = fetch_omniglot("background", **common)
        rng = np.random.RandomState(args.random_state)
        held_out = np.isin(y, rng.permutation(np.unique(y))[: len(np.unique(y)) // 5])
        return (*rotate_classes(X[~held_out], y[~held_out]), X[held_out], y[held_out], {})
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    X, y = rotate_classes(X, y)  # 40 classes: digit x rotation
    in_base = (y % 10) < (4 if args.validation else 6)
    novel = ~in_base & ((y % 10) < 6) if args.validation else ~in_base
    return X[in_base], y[in_base], X[novel], y[novel], dataset_encoder(args)


def trained_episodes(learner):
    """Episodes meta-trained, counted from the history's training meta-batches."""
    return sum(
        min(len(losses) * learner.meta_batch_size, learner.episodes_per_epoch)
        for losses in learner.history[:, "batches", :, "train_loss"]
    )


def counted_score(bar, run, counter):
    """A scorer: the fitted classifier's own score (accuracy), each episode counted in
    ``run.<counter>`` (for the message of an interruption) and on ``bar``."""

    def score(fitted, X_query, y_query):
        accuracy = fitted.score(X_query, y_query)
        setattr(run, counter, getattr(run, counter) + 1)
        bar.update()
        return accuracy

    return score


def benchmark(args, out=None):
    """Meta-train, evaluate, print the table and save the classifier; return the results.

    Bad flags raise a ``ValueError`` before any training (``main`` reports
    them as argparse does). Ctrl+C raises a ``KeyboardInterrupt`` whose
    message says how far the run went, and nothing is saved but the
    checkpoints of ``--checkpoint-dir``, from which the same command resumes.
    """
    out = sys.stdout if out is None else out
    run = Run()
    with noting_sigint(run):
        try:
            return _benchmark(args, out, run)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            raise Interrupted(run.interruption()) from None


def _benchmark(args, out, run):
    name, method_params = METHODS[args.method]
    if args.test_time_augmentation < 0:
        raise UsageError(
            f"argument --test-time-augmentation: a number of views >= 0 (0: off), "
            f"got {args.test_time_augmentation}."
        )
    learner_class = getattr(meta, name)
    classifier_params = dict(args.classifier_param)
    check_classifier_params(learner_class.classifier_class, classifier_params, args.method)
    grid = check_tune_grid(
        learner_class.classifier_class, args.tune, classifier_params, args.method
    )
    if grid:
        if args.validation:
            raise UsageError(
                "argument --tune: not allowed with --validation: --tune holds out the "
                "validation classes itself (meta-trains without them, tunes on them, tests "
                "on the test classes); drop --validation."
            )
        if "inner_steps" in grid and args.test_inner_steps is not None:
            raise UsageError(
                "argument --tune: inner_steps is also set by --test-inner-steps; pick one: "
                "tune it or set it."
            )
        if args.tune_episodes < 1:
            raise UsageError(
                f"argument --tune-episodes: a number of episodes >= 1, got {args.tune_episodes}."
            )
    if args.test_time_augmentation and not issubclass(learner_class, meta.ComparatorLearner):
        raise UsageError(
            f"argument --test-time-augmentation: it averages embeddings, and --method "
            f"{args.method} does not classify by embeddings: use it with protonet, matching, "
            "relation, siamese or pretraining."
        )
    ways = args.ways or ([5, 20] if args.dataset == "omniglot" else [5, 10])
    # Under a time budget without --episodes, the budget alone stops training.
    unlimited = args.episodes is None and args.max_time is not None
    episodes = 10**9 if unlimited else 3000 if args.episodes is None else args.episodes
    n_epochs = max(1, round(episodes / args.episodes_per_epoch))
    shape = {"n_way": args.train_way, "n_shot": args.train_shot, "n_query": args.train_query}
    encoder_params = dataset_encoder(args)
    if args.encoder_from is not None:  # a trained instance replaces the encoder class
        encoder_params = {"encoder": saved_encoder(args.encoder_from)}
    # The learner parameters that flags set; --param sets the others.
    fixed = {
        "episodes_per_epoch": args.episodes_per_epoch,
        "max_epochs": n_epochs,
        "precision": args.precision,
        "device": args.device,
        "random_state": args.random_state,
        "verbose": 0 if args.quiet else 1,
        **{k: v for k, v in shape.items() if v is not None},
        **encoder_params,
        **({} if args.lr is None else {"lr": args.lr}),
    }
    given = dict(args.param)
    for key in sorted(set(given) & set(fixed)):
        flag = SET_BY_FLAGS.get(key) or (
            "--encoder-from" if args.encoder_from is not None else f"--dataset {args.dataset}"
        )
        raise UsageError(f"argument --param: {key} is set by {flag}; use that flag instead.")
    # Torch modules and augmentations are named by their class: --param head=CosineHead.
    params = {}
    # The method's own parameters give way to the flags.
    method_params = {k: v for k, v in method_params.items() if k not in fixed}
    for key, value in {**method_params, **given}.items():
        try:
            params[key] = named_class(value) if key in COMPONENTS else value
        except ValueError as exc:
            raise UsageError(f"argument {exc}") from None
    learner = learner_class(**fixed, **params)
    check_learner_params(learner_class, learner, given, args.method)
    checkpoint = None
    if args.checkpoint_dir is not None:
        if args.max_time is not None:
            raise UsageError(
                "argument --checkpoint-dir: not allowed with --max-time: a time budget "
                "follows the clock, so a resumed run could not continue it as it was; set "
                "the training's length with --episodes instead."
            )
        settings = training_settings(args, learner, n_epochs)
        prepare_checkpoint_dir(args.checkpoint_dir, settings)
        checkpoint = BenchmarkCheckpoint(args.checkpoint_dir)
        run.checkpoint_dir = args.checkpoint_dir

    try:
        if grid:  # meta-train without the validation classes, tune on them, test as usual
            held_out = argparse.Namespace(**{**vars(args), "validation": True})
            X_base, y_base, X_val, y_val, _ = load_data(held_out)
            X_novel, y_novel = load_data(args, base=False)[2:4]
        else:
            X_base, y_base, X_novel, y_novel, _ = load_data(args)
    except FileNotFoundError:
        if not (args.no_download and args.dataset == "omniglot"):
            raise
        from ..datasets import get_data_home

        home = os.path.join(get_data_home(args.data_home), "omniglot")
        raise UsageError(
            f"argument --no-download: Omniglot is missing from {home}: drop --no-download "
            "to download it, or pass --data-home DIR where omniglot/ lives.",
            usage=False,
        ) from None
    settings = [(n_way, n_shot) for n_way in ways for n_shot in args.shots]
    if grid:  # every setting's episodes can be drawn from the validation classes
        owner = "the validation classes"
        for n_way, n_shot in settings:
            try:
                EpisodeSampler(y_val, n_way, n_shot, args.test_query, owner=owner)
            except ValueError as exc:
                raise UsageError(
                    f"argument --tune: {exc} Here: --ways, --shots or --test-query.", usage=False
                ) from None

    pretraining = isinstance(learner, meta.PretrainingLearner)
    planned_episodes = None if unlimited else n_epochs * args.episodes_per_epoch
    progress = TrainingProgress(
        n_epochs=None if unlimited else n_epochs,
        episodes=planned_episodes,
        seconds=None if args.max_time is None else 60 * args.max_time,
        unit="batches" if pretraining else "episodes",
        quiet=args.quiet,
    )
    # The checkpoint first: it restores a resumed run when training begins, before the
    # progress bar counts the epochs done.
    callbacks = [progress] if checkpoint is None else [checkpoint, progress]
    budget = None
    if args.max_time is not None:  # the budget anneals the learning rate over the time
        schedule = "cosine" if args.lr_schedule == "cosine" else None
        budget = TimeBudget(60 * args.max_time, sink=line_writer(out), lr_schedule=schedule)
        callbacks.append(budget)
    elif args.lr_schedule == "cosine":
        callbacks.append(LRScheduler("CosineAnnealingLR", T_max=n_epochs))
    learner.set_params(callbacks=callbacks)
    if not args.quiet:  # the epoch log between the bar's redraws; colours on a terminal only
        colors = is_terminal(out) and not os.environ.get("NO_COLOR")
        learner.set_params(callbacks__print_log=EpochLog(sink=line_writer(out), colors=colors))
    steps = (
        f"batches of {learner.batch_size} samples"
        if pretraining
        else f"episodes of {learner.n_way}-way {learner.n_shot}-shot {learner.n_query}-query"
    )
    print(
        f"Meta-training {type(learner).__name__} on {len(np.unique(y_base))} base classes "
        f"({len(y_base)} samples): "
        + (steps if planned_episodes is None else f"{planned_episodes} {steps}")
        + f", {args.lr_schedule} learning rate from {learner.lr:g}"
        + ("" if args.precision == "float32" else f", {args.precision} mixed precision")
        + (
            ""
            if budget is None
            else f", within a {args.max_time:g}-minute time budget"
            + (" (the schedule over the time)" if budget.lr_schedule else "")
        ),
        file=out,
        flush=True,
    )
    run.phase, run.progress, run.n_epochs = "training", progress, None if unlimited else n_epochs
    start = time.perf_counter()
    try:
        learner.fit(X_base, y_base)  # skorch's fit returns, half-trained, on a Ctrl+C
    finally:
        progress.close()
    train_seconds = time.perf_counter() - start
    stopped_early = budget is not None and budget.stopped_
    if run.interrupted or not (stopped_early or progress.epochs_ >= n_epochs):
        raise KeyboardInterrupt
    train_episodes = trained_episodes(learner)
    # The epochs a resumed run restored from --checkpoint-dir (None: it trained them all).
    resumed = None if checkpoint is None else getattr(checkpoint, "resumed_epochs_", None)

    run.phase = "evaluating"
    test_steps = {} if args.test_inner_steps is None else {"inner_steps": args.test_inner_steps}
    clf = learner.to_classifier(**{**test_steps, **classifier_params})
    if args.test_time_augmentation:
        clf.set_params(
            encoder=nn.TestTimeAugmentation(
                clf.encoder, n_views=args.test_time_augmentation, random_state=args.random_state
            )
        )

    def embedded(X):  # an embed-then-compare classifier's samples, embedded once
        # (for every setting and every candidate of --tune, unless it sets the encoder)
        return (clf, X) if grid and _sets_encoder(grid) else _embedded_once(clf, X)

    chosen, tune_seconds = {}, None
    if grid:  # each setting's test-time parameters, chosen on the validation classes
        run.phase = "tuning"
        run.tune_episodes = len(settings) * len(ParameterGrid(grid)) * args.tune_episodes
        bar = progress_bar(run.tune_episodes, "tuning", quiet=args.quiet, unit=" episodes")
        tune_start = time.perf_counter()
        try:
            bar.set_postfix_str(f"embedding {len(y_val)} samples")
            searched, X_searched = embedded(X_val)
            for n_way, n_shot in settings:
                bar.set_postfix_str(f"{n_way}-way {n_shot}-shot")
                chosen.update(
                    tune_per_setting(
                        searched,
                        X_searched,
                        y_val,
                        grid,
                        settings=[(n_way, n_shot)],
                        n_query=args.test_query,
                        n_episodes=args.tune_episodes,
                        random_state=args.random_state,
                        embed_once=False,  # done above, once for every setting
                        scoring=counted_score(bar, run, "tuned"),
                    )
                )
        finally:
            bar.close()
        tune_seconds = time.perf_counter() - tune_start

    run.phase = "evaluating"
    run.test_episodes = len(settings) * args.test_episodes
    bar = progress_bar(run.test_episodes, "evaluating", quiet=args.quiet, unit=" episodes")
    rows = []
    test_start = time.perf_counter()
    try:
        bar.set_postfix_str(f"embedding {len(y_novel)} samples")
        # An embed-then-compare classifier has the novel classes embedded once, for every setting.
        scored, X_scored = embedded(X_novel)
        for n_way, n_shot in settings:
            bar.set_postfix_str(f"{n_way}-way {n_shot}-shot")
            tuned = chosen.get((n_way, n_shot))
            result = evaluate_episodes(
                scored if tuned is None else clone(scored).set_params(**tuned["params"]),
                X_scored,
                y_novel,
                n_way=n_way,
                n_shot=n_shot,
                n_query=args.test_query,
                n_episodes=args.test_episodes,
                random_state=args.random_state,
                embed_once=False,  # done above, once for every setting
                scoring=counted_score(bar, run, "evaluated"),
            )
            accuracy, ci95 = result["accuracy"], result["ci95"]
            row = {"n_way": n_way, "n_shot": n_shot, "accuracy": 100 * accuracy, "ci95": 100 * ci95}
            if tuned is not None:  # the chosen values, in the order of the --tune flags
                row["params"] = {name: tuned["params"][name] for name in grid}
                row["validation_accuracy"] = 100 * float(tuned["accuracy"])
            rows.append(row)
    finally:
        bar.close()
    test_seconds = time.perf_counter() - test_start

    # The results are complete: a Ctrl+C from here on is noted and ignored, so that
    # the table, the classifier and the JSON file are written whole.
    run.defer = True  # first: from here on a SIGINT only sets run.interrupted
    run.phase = "saving"
    print(
        f"\n{args.method}, {args.dataset}"
        + (f" ({args.protocol} protocol)" if args.dataset == "omniglot" else "")
        + f": {len(np.unique(y_novel))} "
        + ("validation" if args.validation else "novel")
        + " classes, "
        f"{args.test_episodes} episodes of {args.test_query} queries per class "
        f"(mean ± 95% CI)"
        + (
            f", test-time augmentation over {args.test_time_augmentation} views"
            if args.test_time_augmentation
            else ""
        )
        + (
            f", {', '.join(grid)} tuned per setting on {len(np.unique(y_val))} validation "
            f"classes held out from meta-training ({args.tune_episodes} episodes per candidate)"
            if grid
            else ""
        )
        + f"; meta-training took {train_seconds:.0f} s"
        + ("" if resumed is None else f" (resumed from epoch {resumed} of {n_epochs})")
        + (
            ""
            if budget is None
            else f", {train_episodes} "
            + ("" if planned_episodes is None else f"of {planned_episodes} ")
            + f"episodes: the {args.max_time:g}-minute time budget "
            + ("stopped it early" if stopped_early else "was not reached")
        ),
        file=out,
    )
    headers = ("setting", "accuracy (%)")
    table = [
        (f"{row['n_way']}-way {row['n_shot']}-shot", f"{row['accuracy']:.2f} ± {row['ci95']:.2f}")
        for row in rows
    ]
    if grid:  # the chosen values and their validation accuracy, setting by setting
        headers += ("tuned on validation classes: accuracy (%)",)
        table = [
            (
                *cells,
                ", ".join(f"{name}={value}" for name, value in row["params"].items())
                + f": {row['validation_accuracy']:.2f}",
            )
            for cells, row in zip(table, rows)
        ]
    print(
        tabulate(
            table,
            headers=headers,
            colalign=("right", "right", "left")[: len(headers)],
            disable_numparse=True,
        ),
        file=out,
    )

    output = args.output or f"{args.method}_{args.dataset}.joblib"
    if output.lower() != "none":
        write_atomically(output, lambda path: joblib.dump(clf, path))
        print(
            f"\nSaved the classifier to {output}: joblib.load it, fit it on a support set, "
            "predict queries."
            + (
                f" It keeps the learner's {', '.join(grid)}, not a setting's tuned values "
                "(set_params them)."
                if grid
                else ""
            ),
            file=out,
        )
    result = {
        "method": args.method,
        "dataset": args.dataset,
        "train_episodes": train_episodes,
        "planned_episodes": planned_episodes,
        "max_time_minutes": args.max_time,
        "stopped_early": stopped_early,
        "train_seconds": train_seconds,
        "resumed_from_epoch": resumed,
        "test_seconds": test_seconds,
        # --tune: the grid, and the validation episodes of each candidate and setting
        "tuned": (
            {
                "grid": grid,
                "episodes": args.tune_episodes,
                "validation_classes": len(np.unique(y_val)),
                "seconds": tune_seconds,
            }
            if grid
            else None
        ),
        "results": rows,
        "args": vars(args),
    }
    if args.json:

        def write_json(path):
            with open(path, "w") as f:
                json.dump(result, f, indent=2)

        write_atomically(args.json, write_json)
    return result
