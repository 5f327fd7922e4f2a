"""Regenerate the README's results tables from the stored outputs (never typed by hand).

Reads the `policy_comparison` and `reward_fairness_by_group` SQL models of the given preset and
rewrites the README between `<!-- results:start -->` and `<!-- results:end -->`, and the
feedback-fairness table (`reward_fairness_by_group`) between `<!-- fairness:start -->` and
`<!-- fairness:end -->`:

    .venv/bin/esmr run --seed 0 --seed 1 --seed 2        # materialize seeds + SQL models
    .venv/bin/python docs/render_results.py --data-dir data
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import polars as pl

from esmr_assets.evaluation.metrics import (
    PAPER_BASELINE,
    PAPER_FIGURES,
    PAPER_VOLATILITY_CHANGE,
)
from esmr_assets.io_manager import markdown_table_text
from esmr_assets.settings import load_settings
from esmr_assets.storage import storage_root
from esmr_assets.warehouse import run_query

START, END = "<!-- results:start -->", "<!-- results:end -->"
FAIRNESS_START, FAIRNESS_END = "<!-- fairness:start -->", "<!-- fairness:end -->"
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


def comparison_markdown(root: Path, label_source: str) -> str:
    frame = run_query(
        root,
        f"select c.* from policy_comparison as c join policy_registry as r on r.policy = c.policy "
        f"where label_source = '{label_source}' order by r.position, metric",
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
            paper[title] = f"{PAPER_VOLATILITY_CHANGE:+.1%} vs LightGBM"
        else:
            paper[title] = "–" if esmr is None else f"{esmr}" + ("" if base is None else f" ({base})")
    rows.append(paper)
    return f"Mean over {seeds} seeds [95 % t interval]:\n\n" + markdown_table_text(pl.DataFrame(rows))


def fairness_markdown(root: Path) -> str:
    """reward_fairness_by_group as one row per policy: r = +1 and r = -1 shares per style."""
    frame = run_query(root, "select f.* from reward_fairness_by_group as f join policy_registry as r on r.policy = f.policy "
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


def _replace(text: str, start: str, end: str, block: str, path: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{path} lacks the {start} ... {end} markers")
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    args = parser.parse_args()
    root = storage_root(args.data_dir, load_settings(args.preset))
    block = "\n\n".join([
        START,
        f"On the latent true emotions (`{args.preset}` preset, evaluation users, 30 days):",
        comparison_markdown(root, "true"),
        "On the emotion model's predicted labels (what the platform sees, and what the paper reports):",
        comparison_markdown(root, "predicted"),
        END,
    ])
    text = _replace(args.readme.read_text(), START, END, block, args.readme)
    fairness = "\n\n".join([FAIRNESS_START, fairness_markdown(root), FAIRNESS_END])
    args.readme.write_text(_replace(text, FAIRNESS_START, FAIRNESS_END, fairness, args.readme))
    print(f"rewrote the results block of {args.readme}")


if __name__ == "__main__":
    main()
