"""The closed loop's daily labeller reads each day exactly the features the batch pipeline
builds from the whole log: engagement_change across churn gaps, the previous label."""

import numpy as np
import polars as pl

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.features import build_features, previous_labels
from esmr_assets.emotion.labeller import DailyLabeller

SETTINGS = load_settings("smoke", {"simulation": {"n_days": 12}}, whole_graph=False)


class Recorder:
    """The ThresholdModel's labels, keeping every feature matrix it is asked about."""

    def __init__(self, model) -> None:
        self.model, self.seen = model, []
        self.classes_ = model.classes_

    def predict_proba(self, cont, cat):
        self.seen.append((cont.copy(), cat.copy()))
        return self.model.predict_proba(cont, cat)


def test_daily_features_equal_the_batch_features(logged_world, threshold_model):
    _, logs, *_ = logged_world(SETTINGS.simulation, 5)
    logs = logs.sort("day", "user_id")
    days = logs.partition_by("day", maintain_order=True)
    churned = logs.filter(pl.col("churned")).select("user_id").unique().height
    assert churned > 0 and (logs["engagement"] == 0).sum() > 0  # the gaps the feature must bridge

    recorder = Recorder(threshold_model)
    labeller = DailyLabeller(recorder).reset(days[0].height)
    labels = [labeller.label(day, day["true_emotion"].to_numpy())[0] for day in days]

    predicted = pl.Series(np.concatenate(labels).astype(str))
    batch = build_features(logs, previous_labels(logs, predicted))
    for d, (cont, cat) in enumerate(recorder.seen):
        rows = (logs["day"] == d).to_numpy()
        assert np.array_equal(cont, batch.cont[rows]), f"continuous features differ on day {d}"
        assert np.array_equal(cat, batch.cat[rows]), f"categorical features differ on day {d}"
    change = batch.cont[:, 9]
    assert (change != 0).mean() > 0.3 and np.abs(change).max() <= 8.0
