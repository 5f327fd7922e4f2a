"""Baselines for the emotion classifier, on the same features and user split as the
TabTransformer: multinomial logistic regression (is attention needed at all?) and LightGBM
(the usual strongest tabular model)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from .features import EmotionFeatures
from .metrics import classification_scores

# One thread each: partitions run side by side on few cores, where a second OpenMP/BLAS
# thread spins instead of working (logistic regression: 2 s on one thread, 4-100 s on two
# under load). LightGBM's deterministic=True needs a fixed count anyway.
N_THREADS = 1
LIGHTGBM_ROUNDS = 300
LIGHTGBM_EARLY_STOP = 20


def _stack(features: EmotionFeatures) -> np.ndarray:
    """Continuous then categorical columns in one float matrix (codes are exact in float64)."""
    return np.hstack([features.cont.astype(np.float64), features.cat.astype(np.float64)])


def fit_logistic(train: EmotionFeatures, y: np.ndarray, random_state: int = 0) -> Pipeline:
    """Standardised continuous + one-hot categorical -> multinomial logistic regression."""
    n_cont = train.cont.shape[1]
    encode = ColumnTransformer(
        [
            ("continuous", StandardScaler(), list(range(n_cont))),
            (
                "categorical",
                OneHotEncoder(categories=[list(range(c)) for c in train.cardinalities], handle_unknown="ignore"),
                list(range(n_cont, n_cont + len(train.cardinalities))),
            ),
        ]
    )
    model = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=2_000, random_state=random_state))])
    with threadpool_limits(N_THREADS):
        return model.fit(_stack(train), y)


def fit_lightgbm(
    train: EmotionFeatures, y: np.ndarray, val: EmotionFeatures, y_val: np.ndarray, random_state: int = 0
) -> lgb.LGBMClassifier:
    """Multiclass LightGBM with early stopping on validation log-loss; deterministic=True
    and a fixed thread count make it reproducible bit for bit."""
    n_cont = train.cont.shape[1]
    model = lgb.LGBMClassifier(
        objective="multiclass",
        n_estimators=LIGHTGBM_ROUNDS,
        learning_rate=0.1,
        num_leaves=31,
        random_state=random_state,
        deterministic=True,
        force_row_wise=True,
        num_threads=N_THREADS,
        verbose=-1,
    )
    categorical = list(range(n_cont, n_cont + len(train.cardinalities)))
    # lightgbm 4.7 label-encodes string classes in `eval_set` but not in its replacement
    # `eval_X`/`eval_y`, so the deprecated argument stays, its warning silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The argument 'eval_set' is deprecated")
        return model.fit(
            _stack(train),
            y,
            eval_set=[(_stack(val), y_val)],
            categorical_feature=categorical,
            callbacks=[lgb.early_stopping(LIGHTGBM_EARLY_STOP, verbose=False)],
        )


def predict(model: Pipeline | lgb.LGBMClassifier, features: EmotionFeatures) -> np.ndarray:
    """Labels from either baseline."""
    return model.predict(_stack(features))


def score_baselines(
    train: EmotionFeatures,
    y_train: np.ndarray,
    val: EmotionFeatures,
    y_val: np.ndarray,
    test: EmotionFeatures,
    y_test: np.ndarray,
    random_state: int = 0,
) -> dict[str, tuple[dict[str, float], np.ndarray, Pipeline | lgb.LGBMClassifier]]:
    """{'logistic_regression': ({accuracy, macro_f1}, test predictions, fitted model), 'lightgbm': ...}."""
    models: Sequence[tuple[str, Pipeline | lgb.LGBMClassifier]] = (
        ("logistic_regression", fit_logistic(train, y_train, random_state)),
        ("lightgbm", fit_lightgbm(train, y_train, val, y_val, random_state)),
    )
    out = {}
    for name, model in models:
        predicted = predict(model, test)
        out[name] = (classification_scores(y_test, predicted), predicted, model)
    return out
