"""A policy from outside the package, run through the whole graph the way its README says:
`PYTHONPATH` and `policy.plugins`, nothing edited in `esmr_assets`. And the Gymnasium ids over
a materialized cell."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "examples" / "happy_after_negative"
BIN = Path(sys.executable).parent


def test_the_example_plugin_runs_end_to_end_and_appears_in_the_effects(tmp_path):
    data = tmp_path / "data"
    overrides = json.dumps({"policy": {"plugins": ["happy_after_negative"]}})
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    done = subprocess.run([BIN / "esmr", "run", "--seed", "1", "--preset", "smoke", "--data-dir", str(data),
                           "--overrides", overrides], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    root = data / "smoke"
    [scenario] = [p.name for p in (root / "policy_effects").iterdir()]

    def table(name: str) -> pl.DataFrame:
        return pl.read_parquet(root / name / scenario / "seed=1" / "part-0.parquet")

    effects = table("policy_effects").filter(pl.col("policy") == "happy_after_negative")
    assert effects.height > 0 and not effects["oracle"].any()
    rollouts = table("policy_rollouts").filter(pl.col("policy") == "happy_after_negative").sort("user_id", "day")
    # It led with happy exactly on the days after a predicted negative day.
    after_negative = pl.col("predicted_label").shift(1).over("user_id").is_in(["stressed", "disappointed"])
    acted = rollouts.select(after_negative.fill_null(False).alias("expected"), (pl.col("action") == "happy")
                            .fill_null(False).alias("acted"))
    assert acted["expected"].any() and acted["expected"].equals(acted["acted"].alias("expected"))
    # The summary's SQL shows it too.
    assert "happy_after_negative" in done.stdout


def test_the_registered_ids_make_environments_over_a_materialized_cell(smoke_graph):
    import gymnasium

    root, _ = smoke_graph
    vector = gymnasium.make_vec("esmr_assets.gym:esmr/ClosedLoop-v0", num_envs=7, data_dir=root.parent,
                                preset="smoke", seed=2, split="evaluation")
    observation, _ = vector.reset()
    assert observation.shape == (7, vector.unwrapped.single_observation_space.shape[0])
    _, reward, _, _, info = vector.step(np.zeros(7, dtype=int))
    assert reward.shape == (7,) and "r_eng" in info
    single = gymnasium.make("esmr_assets.gym:esmr/ClosedLoopUser-v0", data_dir=root.parent, preset="smoke", seed=2)
    assert single.reset(seed=3)[0].shape == vector.unwrapped.single_observation_space.shape
    with pytest.raises(FileNotFoundError, match="esmr run --seed 9 --preset smoke"):
        gymnasium.make_vec("esmr_assets.gym:esmr/ClosedLoop-v0", num_envs=2, data_dir=root.parent, preset="smoke", seed=9)
