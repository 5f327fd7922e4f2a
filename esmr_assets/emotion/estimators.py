"""The emotion estimates a platform can run in the closed loop (`policy.emotion_source`), as
stored models with the TabTransformer's interface: `classes_`, `predict_proba(cont, cat)`,
`predict(cont, cat)`, and `to_bytes`/`from_bytes` of plain JSON (arrays as lists, LightGBM
as its model text; nothing pickled). The TabTransformer itself (the paper's, or trained on
the latent truth) is stored by its own class; `LatentEmotion` stands for the truth itself.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.portable import exp, matmul


@runtime_checkable
class EmotionModel(Protocol):
    """What the closed loop and the predictions read from an emotion model."""

    classes_: np.ndarray

    def predict_proba(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray: ...

    def to_bytes(self) -> bytes: ...


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class LogisticEmotionModel:
    """The logistic-regression baseline as arrays: standardised continuous columns and
    one-hot categorical codes, then a multinomial softmax (sklearn's `predict_proba`)."""

    def __init__(self, mean, scale, cardinalities, coef, intercept, classes) -> None:
        self.mean_, self.scale_ = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        self.cardinalities_ = tuple(int(c) for c in cardinalities)
        self.coef_, self.intercept_ = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
        self.classes_ = np.asarray(classes)

    @classmethod
    def from_pipeline(cls, pipeline, cardinalities) -> LogisticEmotionModel:
        """From `baselines.fit_logistic`'s fitted pipeline."""
        scaler = pipeline.named_steps["encode"].named_transformers_["continuous"]
        classify = pipeline.named_steps["classify"]
        return cls(scaler.mean_, scaler.scale_, cardinalities, classify.coef_, classify.intercept_, classify.classes_)

    def _design(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        continuous = (np.asarray(X_cont, dtype=np.float64) - self.mean_) / self.scale_
        codes = np.asarray(X_cat, dtype=np.int64)
        one_hot = [codes[:, j, None] == np.arange(c)[None, :] for j, c in enumerate(self.cardinalities_)]
        return np.hstack([continuous, *(block.astype(np.float64) for block in one_hot)])

    def predict_proba(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        return _softmax(matmul(self._design(X_cont, X_cat), self.coef_.T) + self.intercept_)

    def predict(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X_cont, X_cat).argmax(axis=1)]

    def to_bytes(self) -> bytes:
        return json.dumps({
            "kind": "logistic_regression", "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
            "cardinalities": list(self.cardinalities_), "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(), "classes": self.classes_.tolist(),
        }, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LogisticEmotionModel:
        saved = json.loads(data)
        return cls(saved["mean"], saved["scale"], saved["cardinalities"], saved["coef"], saved["intercept"],
                   saved["classes"])


class LightGBMEmotionModel:
    """The LightGBM baseline as its model text (at its best iteration) and its classes."""

    def __init__(self, model_text: str, classes) -> None:
        import lightgbm as lgb

        self.model_text = model_text
        self.classes_ = np.asarray(classes)
        self.booster_ = lgb.Booster(model_str=model_text)

    @classmethod
    def from_classifier(cls, classifier) -> LightGBMEmotionModel:
        """From `baselines.fit_lightgbm`'s fitted classifier."""
        booster = classifier.booster_
        return cls(booster.model_to_string(num_iteration=booster.best_iteration or None), classifier.classes_)

    def predict_proba(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        stacked = np.hstack([np.asarray(X_cont, dtype=np.float64), np.asarray(X_cat, dtype=np.float64)])
        return np.asarray(self.booster_.predict(stacked, num_threads=1))

    def predict(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X_cont, X_cat).argmax(axis=1)]

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": "lightgbm", "classes": self.classes_.tolist(), "model": self.model_text},
                          sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LightGBMEmotionModel:
        saved = json.loads(data)
        return cls(saved["model"], saved["classes"])


class LatentEmotion:
    """The `oracle` source: no model, the simulator's latent true emotion itself. Whatever
    reads it is a diagnostic no platform could deploy."""

    classes_ = np.asarray([])

    def predict_proba(self, X_cont: np.ndarray, X_cat: np.ndarray) -> np.ndarray:
        raise TypeError("the latent truth is read from the simulator, not predicted from features")

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": "oracle"}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LatentEmotion:
        if json.loads(data).get("kind") != "oracle":
            raise ValueError("not a stored latent-emotion marker")
        return cls()


def reads_latent(model) -> bool:
    """Whether the emotion estimate is the latent truth (the `oracle` source)."""
    return isinstance(model, LatentEmotion)

