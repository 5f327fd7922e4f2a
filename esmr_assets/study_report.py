"""A study's result: per scenario, the paired effects of the reported policies against the
reference policy, with 95 % t intervals across seeds, and a plot of effect against the knob.

It reads the warehouse's `policy_effects_across_seeds` model (scenario × policy × metric,
already across seeds), so the study table and `esmr sql` can never disagree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from .evaluation.plots import plt, to_png
from .studies import Study
from .warehouse import run_query

SOURCE = "policy_effects_across_seeds"
COLUMNS = ["scenario", "knob", "value", "policy", "oracle", "metric", "seeds", "effect", "sd", "ci95_low",
           "ci95_high", "seeds_above_zero", "seeds_below_zero", "share_of_ceiling", "replicate_sd"]


def _quoted(names) -> str:
    return ", ".join("'" + name.replace("'", "''") + "'" for name in names)


def study_effects(root: Path, study: Study) -> pl.DataFrame:
    """One row per scenario, reported policy and metric, in the spec's scenario order; on the
    latent truth (`label_source = 'true'`). Scenarios not materialized yet are absent."""
    keys = {study.cell_scenario(s): s for s in study.scenarios}
    frame = run_query(root, f"select * from {SOURCE} where label_source = 'true' and scenario in ({_quoted(keys)}) "
                            f"and policy in ({_quoted(study.policies)}) and metric in ({_quoted(study.metrics)})")
    order = {key: n for n, key in enumerate(keys)}
    knobs = {key: s.knob for key, s in keys.items()}
    return (
        frame.with_columns(
            pl.col("scenario").replace_strict({k: s.name for k, s in keys.items()}).alias("name"),
            pl.col("scenario").replace_strict({k: (v[0] if v else None) for k, v in knobs.items()},
                                              return_dtype=pl.String).alias("knob"),
            pl.col("scenario").replace_strict({k: (str(v[1]) if v else None) for k, v in knobs.items()},
                                              return_dtype=pl.String).alias("value"),
            pl.col("scenario").replace_strict(order).alias("_order"),
            pl.col("policy").replace_strict({p: n for n, p in enumerate(study.policies)}).alias("_policy"),
            pl.col("metric").replace_strict({m: n for n, m in enumerate(study.metrics)}).alias("_metric"),
        )
        .sort("_order", "_policy", "_metric")
        .with_columns(pl.col("name").alias("scenario"))
        .select(COLUMNS)
    )


def effects_plot(effects: pl.DataFrame, study: Study) -> bytes:
    """One panel per metric: each scenario's effect per policy with its interval across
    seeds, scenarios in the spec's order (the knob's order when a study varies one knob)."""
    metrics = [m for m in study.metrics if m in set(effects["metric"])] or list(study.metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), squeeze=False)
    names = [s.name for s in study.scenarios]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(study.policies))
    for ax, metric in zip(axes[0], metrics):
        for n, policy in enumerate(study.policies):
            rows = effects.filter((pl.col("metric") == metric) & (pl.col("policy") == policy))
            position = {name: k for k, name in enumerate(names)}
            xs = np.array([position[s] for s in rows["scenario"]], dtype=float) + (n - (len(study.policies) - 1) / 2) * width
            mid = rows["effect"].to_numpy()
            low = np.nan_to_num(mid - rows["ci95_low"].fill_null(np.nan).to_numpy())
            high = np.nan_to_num(rows["ci95_high"].fill_null(np.nan).to_numpy() - mid)
            oracle = bool(rows["oracle"].any()) if rows.height else False
            ax.errorbar(xs, mid, yerr=[low, high], fmt="o", capsize=3, label=f"{policy} (oracle)" if oracle else policy)
        ax.axhline(0.0, color="#888888", linewidth=0.8)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{metric}: effect vs reference", fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"study {study.name}: paired effects, 95 % t intervals across seeds", fontsize=11)
    fig.tight_layout()
    return to_png(fig)
