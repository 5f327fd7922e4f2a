"""Phase II emotion stage at the paper's scale: cluster labels and their agreement with the
simulator's latent truth, then TabTransformer, logistic regression and LightGBM trained on
those labels (user-level 70/15/15 split), scored against the labels and against the truth.

The paper's figure (TabTransformer, ~98.3 % accuracy over six states, §4.2) is printed
beside ours; it was measured on the paper's own cluster labels, not on these.

    .venv/bin/python benchmarks/emotion.py            # seed 0
    .venv/bin/python benchmarks/emotion.py --seed 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from esmr_assets.core.rng import stream
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import TRUE_EMOTIONS
from esmr_assets.emotion import baselines
from esmr_assets.emotion.clustering import EmotionClusterer, agreement
from esmr_assets.emotion.features import (
    EmotionFeatures,
    build_features,
    previous_labels,
    split_users,
)
from esmr_assets.emotion.metrics import classification_scores, confusion_frame
from esmr_assets.emotion.tabtransformer import TabTransformerClassifier
from esmr_assets.sim.content import simulate_videos
from esmr_assets.sim.logs import simulate_logs
from esmr_assets.sim.population import simulate_users

PAPER_ACCURACY = 0.983


def simulate(seed: int) -> pl.DataFrame:
    settings = load_settings("paper").simulation
    videos = simulate_videos(settings.n_videos, stream(seed, "videos"))
    users = simulate_users(settings, stream(seed, "users"))
    return simulate_logs(videos, users, settings, seed)[0]


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def report_clusters(logs: pl.DataFrame, seed: int) -> pl.Series:
    """Print agreement for the default and the paper's global scaling; return the default's labels."""
    print("== cluster labels (K-Means k=5 on active days + rules) vs latent truth ==")
    print(f"{'scaling':<18} {'fit s':>6} {'ARI':>6} {'NMI':>6} {'accuracy':>9}")
    fitted = {}
    for within in ("profile", None):
        clusterer, seconds = timed(lambda: EmotionClusterer(random_state=seed, standardise_within=within).fit(logs))
        fitted[within] = clusterer
        score = agreement(clusterer.label(logs), logs["true_emotion"])
        name = "per profile" if within else "global (paper)"
        print(f"{name:<18} {seconds:>6.1f} {score['ari']:>6.3f} {score['nmi']:>6.3f} {score['accuracy']:>9.3f}")
    clusterer = fitted["profile"]
    labels = clusterer.label(logs)
    print("\nlabel distribution (default: per-profile scaling) beside the latent truth:")
    counts = {
        "cluster labels": labels.cast(pl.String).to_numpy(),
        "latent truth": logs["true_emotion"].cast(pl.String).to_numpy(),
    }
    table = {name: [int((values == e).sum()) for e in TRUE_EMOTIONS] for name, values in counts.items()}
    print(pl.DataFrame({"emotion": TRUE_EMOTIONS, **table}))
    print("\ncluster -> emotion:", clusterer.cluster_emotion_)
    print("centroids (per-profile z-scores):")
    with pl.Config(tbl_width_chars=200, float_precision=2):
        print(clusterer.centroids_)
    elbow = [f"{r['k']}: {r['inertia']:,.0f} / {r['silhouette']:.3f}" for r in clusterer.elbow_.iter_rows(named=True)]
    print("elbow (k: inertia / silhouette):", ", ".join(elbow))
    print("\nconfusion, rows = latent truth, columns = cluster label:")
    print(confusion_frame(logs["true_emotion"], labels))
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pl.Config.set_tbl_rows(20)
    pl.Config.set_tbl_cols(12)

    logs, seconds = timed(lambda: simulate(args.seed))
    print(f"simulated {logs.height:,} user-days (seed {args.seed}) in {seconds:.1f} s\n")
    labels = report_clusters(logs, args.seed)

    features = build_features(logs, previous_labels(logs, labels))
    y = labels.cast(pl.String).to_numpy()
    truth = logs["true_emotion"].cast(pl.String).to_numpy()
    split = split_users(logs["user_id"], args.seed)
    train, val, test = (features.take(mask) for mask in split)
    print(f"\nsplit by user: {split.train.sum():,} train / {split.val.sum():,} val / {split.test.sum():,} test rows")
    print(f"cluster labels vs truth on the test rows: accuracy {np.mean(y[split.test] == truth[split.test]):.3f}")

    rows = []

    def record(name: str, fit_s: float, per_epoch: str, predict: Callable[[EmotionFeatures], np.ndarray]) -> None:
        predicted, infer_s = timed(lambda: predict(features))
        scores = classification_scores(y[split.test], predicted[split.test])
        rows.append(
            {
                "model": name,
                "fit s": round(fit_s, 1),
                "s/epoch": per_epoch,
                "infer rows/s": int(logs.height / infer_s),
                "acc vs clusters": round(scores["accuracy"], 4),
                "macro-F1": round(scores["macro_f1"], 4),
                "acc vs truth": round(float(np.mean(predicted[split.test] == truth[split.test])), 4),
            }
        )

    # The paper's LayerNorm over the continuous features is run once on CPU, to show why it is off.
    variants = [("cpu", {}), ("cpu", {"layer_norm_continuous": True})]
    variants += [("cuda", {})] if torch.cuda.is_available() else []
    fit_args = (*train[:2], y[split.train], *val[:2], y[split.val], features.cardinalities)
    for device, extra in variants:
        model = TabTransformerClassifier(random_state=args.seed, device=device, **extra)
        _, fit_s = timed(lambda: model.fit(*fit_args))
        per_epoch = f"{np.mean([h['seconds'] for h in model.history_]):.2f} x{len(model.history_)}"
        name = f"TabTransformer {device}" + (" +LayerNorm(cont)" if extra else "")
        record(name, fit_s, per_epoch, lambda f: model.predict(f.cont, f.cat))

    logistic, fit_s = timed(lambda: baselines.fit_logistic(train, y[split.train], args.seed))
    record("logistic regression", fit_s, "-", lambda f: baselines.predict(logistic, f))
    lightgbm, fit_s = timed(lambda: baselines.fit_lightgbm(train, y[split.train], val, y[split.val], args.seed))
    record(f"LightGBM ({lightgbm.best_iteration_} rounds)", fit_s, "-", lambda f: baselines.predict(lightgbm, f))

    print("\n== classifiers on the cluster labels (test users) ==")
    with pl.Config(tbl_width_chars=160, fmt_str_lengths=40):
        print(pl.DataFrame(rows))
    print(f"paper: TabTransformer accuracy ~{PAPER_ACCURACY:.1%} on its own cluster labels (§4.2, Fig. 7)")
    if not torch.cuda.is_available():
        print("no CUDA device here: GPU figures not measured")


if __name__ == "__main__":
    main()
