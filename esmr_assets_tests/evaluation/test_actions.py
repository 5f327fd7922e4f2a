"""The action shares by predicted state, against a DuckDB recomputation of the same counts."""

import duckdb
import polars as pl

from esmr_assets.evaluation.actions import RANKER, action_shares


def test_shares_are_counts_of_yesterdays_state_and_todays_action():
    rollouts = pl.DataFrame({
        "policy": ["a"] * 6 + ["b"] * 3,
        "oracle": [False] * 6 + [True] * 3,
        "user_id": [1, 1, 1, 2, 2, 2, 1, 1, 1],
        "day": [0, 1, 2, 0, 1, 2, 0, 1, 2],
        "predicted_label": ["stressed", "happy", "happy", "stressed", "stressed", "neutral", "happy", "happy", "happy"],
        "action": [None, "happy", None, None, "happy", "lonely", None, None, "happy"],
    }).sample(fraction=1.0, shuffle=True, seed=3)  # the rows' order must not matter
    table = action_shares(rollouts)
    expected = duckdb.sql("""
        with days as (
            select policy, oracle, day, coalesce(action, 'ranker') as action,
                   lag(predicted_label) over (partition by policy, user_id order by day) as state
            from rollouts)
        , counts as (
            select policy, oracle, state, action, count(*) as user_days from days where day >= 1 group by all)
        select *, user_days / sum(user_days) over (partition by policy, state) as share,
               user_days / sum(user_days) over (partition by policy) as share_of_days
        from counts order by policy, state, action""").pl()
    assert table.sort("policy", "state", "action").to_dicts() == expected.to_dicts()
    a = table.filter(pl.col("policy") == "a")
    stressed = a.filter(pl.col("state") == "stressed")  # both users on day 1, user 2 on day 2
    assert stressed["action"].to_list() == ["happy", "lonely"] and stressed["share"].to_list() == [2 / 3, 1 / 3]
    assert set(table["action"]) == {"happy", "lonely", RANKER}
    assert table.height == 5
