"""Regenerate the results tables of docs/ from the archived cells (never typed by hand).

The main evaluation is the fair test's `paper` scenario (`studies/fair_test.toml`: the default
settings with five training replicates of ESMR's agent). From its archived cells it rewrites
the blocks of docs/ between markers: the paired effects (`policy_effects_across_seeds`, with its
forest plot written to docs/figures/effects_forest.png) between `<!-- effects:start -->` and
`<!-- effects:end -->`, the raw means (`policy_comparison`) between `<!-- results:start -->` and
`<!-- results:end -->`, and the feedback-fairness table (`reward_fairness_by_group`) between
`<!-- fairness:start -->` and `<!-- fairness:end -->`:

    .venv/bin/esmr study run studies/fair_test.toml --data-dir <dir>
    .venv/bin/python docs/render/studies.py --data-dir <dir>     # archives the finished cells
    .venv/bin/python docs/render/results.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from esmr_assets.evaluation.metrics import (
    PAPER_BASELINE,
    PAPER_FIGURES,
    PAPER_VOLATILITY_CHANGE,
)
from esmr_assets.evaluation.plots.evaluation import effects_forest
from esmr_assets.orchestration.metadata import markdown_table_text
from esmr_assets.storage.warehouse import Query

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS, link, write_block  # noqa: E402
from sources import CELLS, MAIN_SCENARIO, MAIN_STUDY, archived_query  # noqa: E402

#: the forest plot, under the pages' folder
FOREST_PNG = "figures/effects_forest.png"
#: where each of the paper's figures comes from (docs/paper.md):
#: computed by the paper's public code, or only stated in the paper
PROVENANCE = {
    "negative_days": "stated",
    "happy_at_least_once": "code",
    "final_dominant_happy": "code",
    "full_recovery": "code, another definition",
    "volatility": "stated",
    "bounce_rate": "stated",
    "engagement_reward": "stated",
}
SHOWN = (
    ("negative_days", "negative days", 2),
    ("happy_at_least_once", "happy ≥ once", 3),
    ("final_dominant_happy", "final dominant happy", 3),
    ("full_recovery", "full recovery", 3),
    ("volatility", "volatility", 3),
    ("bounce_rate", "bounce rate", 3),
    ("engagement_reward", "engagement reward", 2),
    ("mean_latent_valence", "mean latent valence", 3),
    ("recovery_time", "recovery time (days)", 2),
)


def _cell(mean: float | None, low: float | None, high: float | None, digits: int) -> str:
    if mean is None or mean != mean:
        return "–"
    text = f"{mean:.{digits}f}"
    return text if low is None else f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def comparison_markdown(query: Query, label_source: str) -> str:
    frame = query(f"select c.* from policy_comparison as c join policy_registry as r on r.policy = c.policy "
        f"where label_source = '{label_source}' order by r.position, metric",  # an entry: replicates left out
    )
    seeds = int(frame["seeds"].max())
    rows = []
    for policy in frame["policy"].unique(maintain_order=True):
        cells = {"policy": policy}
        for metric, title, digits in SHOWN:
            row = frame.filter((pl.col("policy") == policy) & (pl.col("metric") == metric))
            cells[title] = _cell(*(row[c][0] if row.height else None for c in ("mean", "ci95_low", "ci95_high")),
                                 digits=digits) if row.height else "–"
        rows.append(cells)
    paper = {"policy": "paper: ESMR (LightGBM)"}
    for metric, title, _ in SHOWN:
        esmr, base = PAPER_FIGURES.get(metric), PAPER_BASELINE.get(metric)
        if metric == "volatility":
            figure = f"{PAPER_VOLATILITY_CHANGE:+.1%} vs LightGBM"
        else:
            figure = "–" if esmr is None else f"{esmr}" + ("" if base is None else f" ({base})")
        paper[title] = figure if figure == "–" else f"{figure} *{PROVENANCE[metric]}*"
    rows.append(paper)
    return f"Mean over {seeds} seeds [95 % t interval]:\n\n" + markdown_table_text(pl.DataFrame(rows))


def effects_markdown(query: Query, label_source: str = "true") -> str:
    """policy_effects_across_seeds as one row per policy and one column per key metric:
    effect [95 % t interval across seeds] and, below, the seeds whose own interval lies above
    / below zero; oracle policies marked. Of an agent's training replicates, only the pool
    (`esmr@all`) is shown beside the entry."""
    frame = query("select e.* from policy_effects_across_seeds as e join policy_registry as r "
        f"on r.policy = split_part(e.policy, '@', 1) where label_source = '{label_source}' "
        "and (e.policy not like '%@%' or e.policy like '%@all') order by r.position, e.policy, metric",
    )
    seeds, reference = int(frame["seeds"].max()), frame["reference"][0]
    rows = []
    for policy in frame["policy"].unique(maintain_order=True):
        part = frame.filter(pl.col("policy") == policy)
        oracle = bool(part["oracle"][0])
        cells = {"policy": f"{policy} *(oracle)*" if oracle else policy}
        for metric, title, digits in SHOWN:
            row = part.filter(pl.col("metric") == metric)
            if not row.height:
                cells[title] = "–"
                continue
            r = row.row(0, named=True)
            cell = _cell(r["effect"], r["ci95_low"], r["ci95_high"], digits)
            cells[title] = f"{cell} ({r['seeds_above_zero']}↑ {r['seeds_below_zero']}↓)"
        share = part.filter(pl.col("metric") == "mean_latent_valence")["share_of_ceiling"]
        cells["share of best feed's valence gain"] = "–" if share.is_null().all() else f"{share[0]:.0%}"
        rows.append(cells)
    return (f"Paired per-user effect against `{reference}`, mean over {seeds} seeds [95 % t interval across "
            "seeds] (seeds whose own per-user bootstrap interval lies wholly above ↑ / below ↓ zero):\n\n"
            + markdown_table_text(pl.DataFrame(rows)))


def fairness_markdown(query: Query) -> str:
    """reward_fairness_by_group as one row per policy: r = +1 and r = -1 shares per style."""
    frame = query("select f.* from reward_fairness_by_group as f join policy_registry as r on r.policy = f.policy "
                      "order by r.position, feedback_style")
    seeds = int(frame["seeds"].max())
    rows = []
    for policy in frame["policy"].unique(maintain_order=True):
        cells = {"policy": policy}
        part = frame.filter(pl.col("policy") == policy)
        for sign, title in (("positive_share", "r = +1"), ("negative_share", "r = −1")):
            for style in ("expressive", "critical", "passive"):
                value = part.filter(pl.col("feedback_style") == style)[sign]
                cells[f"{title} {style}"] = f"{value[0]:.3f}" if value.len() else "–"
        rows.append(cells)
    return (f"Share of served impressions by latent satisfaction, per communication style (mean over {seeds} "
            "seeds, latent truth, never seen by a learner):\n\n" + markdown_table_text(pl.DataFrame(rows)))


def render(docs: Path = DOCS, cells: Path = CELLS) -> list[Path]:
    """Every results block of `docs` from the main evaluation's archived cells; returns the pages written."""
    query = archived_query(MAIN_STUDY, MAIN_SCENARIO, cells=cells)
    if query("select count(*) as n from policy_effects")["n"][0] == 0:
        print(f"no archived cells of {MAIN_STUDY}.{MAIN_SCENARIO}: the results blocks are left as they are")
        return []
    where = (f"`{MAIN_STUDY}.{MAIN_SCENARIO}`: `paper` preset, evaluation users, 30 days, five training replicates "
             "of ESMR's agent")
    written = [write_block("results", [
        f"On the latent true emotions ({where}):",
        comparison_markdown(query, "true"),
        "On the emotion model's predicted labels (what the platform sees, and what the paper reports):",
        comparison_markdown(query, "predicted"),
    ], docs)]
    written.append(write_block("fairness", [fairness_markdown(query)], docs))
    written.append(write_block("effects", lambda page: [
        f"On the latent true emotions ({where}):",
        effects_markdown(query, "true"),
        "On the emotion model's predicted labels:",
        effects_markdown(query, "predicted"),
        f"![paired effects]({link(docs / FOREST_PNG, page)})",
    ], docs))
    across = query("select e.* from policy_effects_across_seeds as e join policy_registry as r "
                   "on r.policy = split_part(e.policy, '@', 1) where e.policy not like '%@%' "
                   "or e.policy like '%@all' order by r.position, e.policy, metric")
    seeds = int(across["seeds"].max())
    (docs / FOREST_PNG).write_bytes(effects_forest(across, interval=f"mean of {seeds} seeds, 95 % t interval across seeds"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="the folder of pages holding the blocks")
    args = parser.parse_args()
    written = render(args.docs)
    if written:
        print("rewrote the results blocks of", ", ".join(sorted({page.name for page in written})))


if __name__ == "__main__":
    main()
