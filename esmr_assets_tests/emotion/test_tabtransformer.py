"""The TabTransformer estimator: it learns, it is reproducible, and it round-trips."""

from pathlib import Path

import numpy as np
import pytest
import torch

from esmr_assets.emotion.tabtransformer import TabTransformerClassifier

CARDINALITIES = (3, 4)
OFFSET = np.array([-1.0, 0.0, 1.0])  # per value of categorical column 0


def _problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A separable rule over both kinds of input: 'special' when column B is 3, otherwise
    the sign of x0 shifted by a per-category offset of column A (margin 0.15 kept clear)."""
    rng = np.random.default_rng(seed)
    cont = rng.normal(size=(3 * n, 5)).astype(np.float32) * np.array([1, 1, 10, 0.1, 1], dtype=np.float32)
    cat = np.stack([rng.integers(0, c, 3 * n) for c in CARDINALITIES], axis=1)
    score = cont[:, 0] + OFFSET[cat[:, 0]]
    keep = np.flatnonzero(np.abs(score) > 0.15)[:n]
    label = np.where(cat[:, 1] == 3, "special", np.where(score > 0, "pos", "neg"))
    return cont[keep], cat[keep], label[keep]


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {"train": _problem(1600, 0), "val": _problem(400, 1), "test": _problem(1000, 2)}


@pytest.fixture(scope="module")
def fitted(data) -> TabTransformerClassifier:
    model = TabTransformerClassifier(batch_size=128, max_epochs=40, random_state=0)
    return model.fit(*data["train"], *data["val"], cardinalities=CARDINALITIES)


def test_learns_a_rule_over_categorical_and_continuous_inputs(fitted: TabTransformerClassifier, data):
    cont, cat, y = data["test"]
    assert (fitted.predict(cont, cat) == y).mean() > 0.95


def test_outputs_are_probabilities_over_the_classes(fitted: TabTransformerClassifier, data):
    cont, cat, _ = data["test"]
    proba = fitted.predict_proba(cont, cat)
    assert list(fitted.classes_) == ["neg", "pos", "special"]
    assert proba.shape == (cont.shape[0], 3)
    assert (proba >= 0).all() and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(fitted.predict(cont, cat), fitted.classes_[proba.argmax(axis=1)])


def test_early_stopping_keeps_the_best_epoch(data):
    # Shuffled training labels: memorising them makes validation loss rise within a few epochs.
    cont, cat, y = data["train"]
    noise = np.random.default_rng(0).permutation(y)
    model = TabTransformerClassifier(batch_size=128, max_epochs=60, patience=2, random_state=0)
    model.fit(cont, cat, noise, *data["val"], cardinalities=CARDINALITIES)
    history = model.history_
    val_losses = [h["val_loss"] for h in history]
    assert model.best_epoch_ == int(np.argmin(val_losses)) + 1
    assert len(history) == model.best_epoch_ + 2 < 60  # stopped after `patience` stale epochs
    cont, cat, y = data["val"]
    logits = torch.log(torch.from_numpy(model.predict_proba(cont, cat)))
    restored = torch.nn.functional.nll_loss(logits, torch.from_numpy(np.searchsorted(model.classes_, y)))
    assert restored.item() == pytest.approx(min(val_losses), rel=1e-4)
    assert set(history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"}


def test_one_seed_gives_identical_weights_on_cpu(data):
    def weights(seed: int) -> dict[str, torch.Tensor]:
        model = TabTransformerClassifier(batch_size=128, max_epochs=3, dropout=0.1, random_state=seed, device="cpu")
        return model.fit(*data["train"], *data["val"], cardinalities=CARDINALITIES).module_.state_dict()

    threads, rng_state = torch.get_num_threads(), torch.random.get_rng_state()
    first, second, other = weights(7), weights(7), weights(8)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    # The caller's torch settings are left as they were.
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), rng_state)


def test_save_and_load_round_trip_exactly(fitted: TabTransformerClassifier, data, tmp_path: Path):
    path = tmp_path / "emotion_model.pt"
    fitted.save(path)
    loaded = TabTransformerClassifier.load(path)
    cont, cat, _ = data["test"]
    assert np.array_equal(loaded.predict_proba(cont, cat), fitted.predict_proba(cont, cat))
    assert np.array_equal(loaded.classes_, fitted.classes_)
    # where a model runs is not saved: it is loaded on the CPU unless told otherwise
    assert loaded.get_params() == {**fitted.get_params(), "device": "cpu"}
    assert loaded.cardinalities_ == CARDINALITIES and loaded.best_epoch_ == fitted.best_epoch_
    # wall times are not saved, so that equal models give equal files
    assert loaded.history_ == [{k: v for k, v in row.items() if k != "seconds"} for row in fitted.history_]
    assert loaded.to_bytes() == fitted.to_bytes()
    from_bytes = TabTransformerClassifier.from_bytes(fitted.to_bytes(), device="cpu")
    assert np.array_equal(from_bytes.predict_proba(cont, cat), fitted.predict_proba(cont, cat))


def test_rejects_inputs_of_the_wrong_width(fitted: TabTransformerClassifier, data):
    cont, cat, _ = data["test"]
    with pytest.raises(ValueError, match="continuous"):
        fitted.predict(cont[:, :4], cat)
