"""The per-group confusion the studies archive, against a count by hand."""

import polars as pl

from esmr_assets.emotion.metrics import confusion_by_group


def test_confusion_by_group_counts_active_days_per_split_and_style():
    predictions = pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3],
        "day": [0, 1, 2, 0, 1, 0],
        "split": ["test", "test", "test", "test", "test", "train"],
        "label": ["happy", "happy", "stressed", "happy", "churned", "happy"],
    })
    logs = pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3],
        "day": [0, 1, 2, 0, 1, 0],
        "churned": [False, False, False, False, True, False],
        "true_emotion": ["stressed", "stressed", "stressed", "happy", "churned", "happy"],
    })
    users = pl.DataFrame({"user_id": [1, 2, 3], "feedback_style": ["outraged", "passive", "outraged"]})
    table = confusion_by_group(predictions, logs, users)
    assert table.rows() == [
        ("test", "outraged", "stressed", "happy", 2),     # user 1's upset days read as pleased
        ("test", "outraged", "stressed", "stressed", 1),
        ("test", "passive", "happy", "happy", 1),          # user 2's churned day is not an active day
        ("train", "outraged", "happy", "happy", 1),
    ]
