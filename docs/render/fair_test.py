"""Regenerate the fair-test tables of docs/ ("Is it ESMR or the implementation?") from the
archived cells of the `fair_test` study (never typed by hand).

Each variant is one scenario of `studies/fair_test.toml`, all with five training replicates of
ESMR's agent (`policy.agent_replicates`). From each scenario's archived `policy_effects` (per
seed, paired per-user effects against `lightgbm` on the latent truth) and `action_shares` it
writes, between `<!-- fair-test:start -->` and `<!-- fair-test:end -->`:

- the paper-faithful configuration: every replicate of ESMR, their pool with the SD between
  replicates, the heuristics, the ceilings;
- per variant: the pooled ESMR's effects, the spread between replicates, the buckets it led
  with on the days it acted, and its paired differences from `hybrid_fixed_happy` and from
  `oracle_esmr` (per seed the difference of the two effects, which share users and noise;
  t interval across seeds);
- the engagement-responsive scenario's policies on emotion and engagement side by side;

and a plot of the variants, docs/figures/fair_test.png. To reproduce:

    .venv/bin/esmr study run studies/fair_test.toml --data-dir <dir>
    .venv/bin/python docs/render/studies.py --data-dir <dir>     # archives the finished cells
    .venv/bin/python docs/render/fair_test.py
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import esmr_assets  # noqa: F401  (pins the numeric kernels before numpy loads)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from esmr_assets.orchestration.metadata import markdown_table_text  # noqa: E402
from esmr_assets.storage.warehouse import Query  # noqa: E402
from esmr_assets.studies.spec import load_study  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS, link, write_block  # noqa: E402
from figures import Archive  # noqa: E402
from sources import CELLS, MAIN_STUDY, PAIRED_DIFFERENCE, REPO, archived_query  # noqa: E402

#: the variants' plot, under the pages' folder
PLOT = "figures/fair_test.png"
#: the study whose scenarios are the variants (each scenario's description says what it changes)
STUDY = load_study(REPO / "studies" / f"{MAIN_STUDY}.toml")
#: ESMR's training replicates in every variant
REPLICATES = STUDY.scenarios[0].settings.policy.agent_replicates
METRICS = (("negative_days", "negative days", 2), ("mean_latent_valence", "mean latent valence", 3),
           ("engagement_reward", "engagement reward", 2))
HEURISTICS = ("hybrid_fixed_happy", "hybrid_best_fixed", "always_happy")
AGENT = "esmr"


def _cell(mean, low, high, digits: int) -> str:
    if mean is None or mean != mean:
        return "–"
    if low is None or low != low:
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def effects(query: Query) -> pl.DataFrame:
    """policy_effects_across_seeds on the latent truth, key metrics, in registry order."""
    names = tuple(m for m, _, _ in METRICS)
    return query("select e.* from policy_effects_across_seeds as e join policy_registry as r "
        f"on r.policy = split_part(e.policy, '@', 1) where label_source = 'true' and metric in {names} "
        "order by r.position, e.policy, metric",
    )


def differences(scenario: str, a: str, b: str, cells: Path = CELLS) -> pl.DataFrame:
    """Per metric: the mean over seeds of effect(a) - effect(b) in `scenario` (paired: the same
    users and noise) with its 95 % t interval across seeds."""
    query = archived_query(None, cells=cells)
    rows = []
    for metric, _, _ in METRICS:
        r = query(PAIRED_DIFFERENCE.format(a=scenario, a_policy=a, b=scenario, b_policy=b, metric=metric)).row(0, named=True)
        rows.append({"metric": metric, "seeds": r["seeds"], "mean": r["mean"],
                     "low": None if r["half_width"] is None else r["mean"] - r["half_width"],
                     "high": None if r["half_width"] is None else r["mean"] + r["half_width"]})
    return pl.DataFrame(rows, schema={"metric": pl.String, "seeds": pl.Int64, "mean": pl.Float64,
                                      "low": pl.Float64, "high": pl.Float64})


def policy_table(frame: pl.DataFrame, policies: list[str] | None = None, spread: bool = False) -> str:
    """One row per policy, one column per metric: effect [t interval]; with `spread`, the SD
    between training replicates of the pooled rows."""
    rows = []
    for policy in frame["policy"].unique(maintain_order=True):
        if policies is not None and policy not in policies:
            continue
        part = frame.filter(pl.col("policy") == policy)
        name = f"{policy} *(oracle)*" if part["oracle"][0] else policy
        cells, spreads = {"policy": name}, {}
        for metric, title, digits in METRICS:
            r = part.filter(pl.col("metric") == metric)
            cells[title] = _cell(*(r[c][0] for c in ("effect", "ci95_low", "ci95_high")), digits) if r.height else "–"
            sd = r["replicate_sd"][0] if r.height else None
            spreads[f"SD between replicates: {title}"] = "–" if sd is None else f"{sd:.{digits}f}"
        rows.append({**cells, **spreads} if spread else cells)
    return markdown_table_text(pl.DataFrame(rows))


def variant_rows(cells: Path = CELLS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per variant: the pooled agent's effects with the replicate SD, the buckets it led with
    on its acting days, and its paired differences from hybrid_fixed_happy and oracle_esmr
    (long form, for the plot)."""
    rows, long = [], []
    pooled = f"{AGENT}@all"
    archive = Archive(cells)
    for scenario in STUDY.scenarios:
        variant, what = scenario.name, scenario.description
        query = archived_query(STUDY.name, variant, STUDY.preset, cells)
        if query("select count(*) as n from policy_effects_across_seeds")["n"][0] == 0:
            print(f"no archived cells of {STUDY.name}.{variant}: left out")
            continue
        frame = effects(query)
        seeds = int(frame["seeds"].max())
        row = {"variant": variant, "what changes": what, "seeds": seeds}
        for metric, title, digits in METRICS[:2]:
            r = frame.filter((pl.col("policy") == pooled) & (pl.col("metric") == metric))
            row[f"{AGENT} (pooled) {title}"] = _cell(r["effect"][0], r["ci95_low"][0], r["ci95_high"][0], digits)
            row[f"replicate SD {title}"] = f"{r['replicate_sd'][0]:.{digits}f}"
            long.append({"variant": variant, "policy": pooled, "metric": metric,
                         **{k: r[c][0] for k, c in (("mean", "effect"), ("low", "ci95_low"), ("high", "ci95_high"))}})
        for share, title in (("negative_bucket_share", "negative buckets on RL days"),
                             ("happy_bucket_share", "happy on RL days")):
            row[title] = archive.figure(f"query:{share}:{STUDY.name}.{variant}:{AGENT}")
        for other in ("hybrid_fixed_happy", "oracle_esmr"):
            for metric, title, digits in METRICS[:2]:
                d = differences(f"{STUDY.name}.{variant}", pooled, other, cells).filter(pl.col("metric") == metric)
                row[f"minus {other}: {title}"] = _cell(d["mean"][0], d["low"][0], d["high"][0], digits)
        for policy in ("oracle_esmr", "hybrid_fixed_happy"):
            for metric, _, _ in METRICS[:2]:
                r = frame.filter((pl.col("policy") == policy) & (pl.col("metric") == metric))
                long.append({"variant": variant, "policy": policy, "metric": metric,
                             **{k: r[c][0] for k, c in (("mean", "effect"), ("low", "ci95_low"), ("high", "ci95_high"))}})
        rows.append(row)
    return pl.DataFrame(rows), pl.DataFrame(long)


def variants_plot(long: pl.DataFrame) -> bytes:
    """Per metric, each variant's effect against lightgbm of pooled ESMR, oracle_esmr and
    hybrid_fixed_happy, with the t interval across seeds."""
    metrics = [m for m, _, _ in METRICS[:2]]
    titles = dict((m, t) for m, t, _ in METRICS)
    variants = long["variant"].unique(maintain_order=True).to_list()
    policies = long["policy"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 0.9 * len(variants) + 1.8), sharey=True)
    for ax, metric in zip(axes, metrics):
        for k, policy in enumerate(policies):
            part = long.filter((pl.col("metric") == metric) & (pl.col("policy") == policy))
            y = [variants.index(v) + 0.22 * (k - 1) for v in part["variant"]]
            mean, low, high = (part[c].to_numpy() for c in ("mean", "low", "high"))
            ax.errorbar(mean, y, xerr=[mean - low, high - mean], fmt="o", capsize=3, label=policy,
                        mfc="white" if policy.startswith("oracle_") else None)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(title=f"{titles[metric]} vs lightgbm", yticks=range(len(variants)), yticklabels=variants)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the axes share y: once for both
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(policies), fontsize=9)
    fig.suptitle("Fair test of ESMR: effects across seeds (95 % t interval), latent truth; oracle_* read the latent state")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def render(docs: Path = DOCS, cells: Path = CELLS) -> Path | None:
    """The fair-test block and plot of `docs` from the study's archived cells; returns the page
    written (None when nothing is archived yet)."""
    paper = effects(archived_query(STUDY.name, "paper", STUDY.preset, cells))
    if paper.is_empty():
        print(f"no archived cells of {STUDY.name}.paper: the fair-test block is left as it is")
        return None
    replicates = [AGENT, *(f"{AGENT}@{r}" for r in range(1, REPLICATES)), f"{AGENT}@all"]
    shown = [*replicates, "esmr_no_emotion", "oracle_esmr", *HEURISTICS, "cb_like", "oracle_best_feed"]
    summary, long = variant_rows(cells)
    session = effects(archived_query(STUDY.name, "session_response", STUDY.preset, cells))
    page = write_block("fair-test", lambda page: [
        f"**The paper's configuration, with {REPLICATES} training replicates of ESMR's agent** (paired per-user "
        "effects against `lightgbm` on the latent truth, mean over seeds [95 % t interval across seeds]; "
        f"`{AGENT}` is the default run's agent, `{AGENT}@1`..`@{REPLICATES - 1}` are retrained on their own "
        f"streams, `{AGENT}@all` pools them, with the SD of the replicates' effects within a seed, averaged "
        "over seeds):",
        policy_table(paper, shown, spread=True),
        "**Each variant, all with the same replicates** (pooled ESMR; the buckets are shares of the user-days "
        "from day 1 on on which a replicate acted; the differences are paired: per seed the difference of the "
        "two effects on the same users and noise, t interval across seeds):",
        markdown_table_text(summary),
        f"![fair test]({link(docs / PLOT, page)})",
        "**Engagement that responds to the feed** (`session_response` 0.5, the paper's timing and state):",
        policy_table(session, [f"{AGENT}@all", "esmr_no_engagement", "oracle_esmr", *HEURISTICS, "cb_like",
                               "random", "oracle_best_feed"], spread=False),
    ], docs)
    (docs / PLOT).write_bytes(variants_plot(long))
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="the folder of pages holding the blocks")
    args = parser.parse_args()
    page = render(args.docs)
    if page is not None:
        print(f"rewrote the fair-test block of {page}")


if __name__ == "__main__":
    main()
