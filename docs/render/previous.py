"""Keep the 5-seed figures of the old code beside the new ones: studies/previous/effects.parquet.

Issue 32 replaces every archived cell with cells of the final code at seeds 0–9. To say how each
finding moved, the old figures stay committed, read from git at the last commit before the
re-run (`COMMIT`), in the same long form as `policy_effects_across_seeds` (scenario, policy,
metric, effect, ci95_low, ci95_high, seeds):

- every study's report (`studies/results/<name>/report.parquet`, its scenarios named
  `<study>.<scenario>`);
- the main evaluation and the fair test, which were sweeps whose cells were never archived:
  their figures as the rendered tables of docs/results.md had them (the `effects` block for
  the main evaluation, the `fair-test` block for the variants), as `fair_test.<variant>`.

    .venv/bin/python docs/render/previous.py
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from sources import REPO  # noqa: E402

#: the last commit with the old code's 5-seed figures (issue 31's learners study complete)
COMMIT = "c28b586"
TARGET = REPO / "studies" / "previous" / "effects.parquet"
TITLES = {"negative days": "negative_days", "happy ≥ once": "happy_at_least_once",
          "final dominant happy": "final_dominant_happy", "full recovery": "full_recovery",
          "volatility": "volatility", "bounce rate": "bounce_rate", "engagement reward": "engagement_reward",
          "mean latent valence": "mean_latent_valence", "recovery time (days)": "recovery_time"}
#: the old fair test's variant names -> the fair_test study's scenarios
VARIANTS = {"last_bucket+next_day": "last_bucket.next_day"}
CELL = re.compile(r"^([+\-]?\d+\.\d+) \[([+\-]?\d+\.\d+), ([+\-]?\d+\.\d+)\]")
SEEDS = 5


def _git(path: str) -> bytes:
    return subprocess.run(["git", "show", f"{COMMIT}:{path}"], cwd=REPO, check=True, capture_output=True).stdout


def _tables(block: str) -> list[list[dict]]:
    """The markdown tables of a rendered block, each as rows of {header: cell}."""
    tables, lines = [], block.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("|---") and n > 0:
            header = [c.strip() for c in lines[n - 1].strip("|").split("|")]
            rows = []
            for row in lines[n + 1:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split("|")))))
            tables.append(rows)
    return tables


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]


def _effects(rows: list[dict], scenario: str, policy_of=lambda row: row["policy"]) -> list[dict]:
    out = []
    for row in rows:
        policy = policy_of(row).replace(" *(oracle)*", "")
        for title, cell in row.items():
            metric = TITLES.get(title) or TITLES.get(title.removeprefix("esmr (pooled) "))
            match = CELL.match(cell) if metric else None
            if match:
                effect, low, high = (float(x) for x in match.groups())
                out.append({"scenario": scenario, "policy": policy, "metric": metric, "effect": effect,
                            "ci95_low": low, "ci95_high": high, "seeds": SEEDS})
    return out


def previous() -> pl.DataFrame:
    rows: list[dict] = []
    listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", COMMIT, "studies/results"], cwd=REPO,
                             check=True, capture_output=True, text=True).stdout.split()
    for path in (p for p in listing if p.endswith("/report.parquet")):
        study = Path(path).parent.name
        report = pl.read_parquet(io.BytesIO(_git(path)))
        rows += report.select(pl.concat_str(pl.lit(f"{study}."), "scenario").alias("scenario"), "policy", "metric",
                              "effect", "ci95_low", "ci95_high", pl.col("seeds").cast(pl.Int64)).to_dicts()
    results = _git("docs/results.md").decode()
    main = _tables(_block(results, "effects"))[0]  # the latent truth's table
    rows += _effects(main, "fair_test.paper")
    fair = _tables(_block(results, "fair-test"))
    for row in fair[1]:
        variant = VARIANTS.get(row["variant"], row["variant"])
        rows += _effects([row], f"fair_test.{variant}", policy_of=lambda _: "esmr@all")
    rows += _effects(fair[2], "fair_test.session_response")
    frame = pl.DataFrame(rows).unique(["scenario", "policy", "metric"], keep="first", maintain_order=True)
    return frame.sort("scenario", "policy", "metric")


def main() -> None:
    frame = previous()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(TARGET)
    print(f"{frame.height} figures of {frame['scenario'].n_unique()} scenarios into {TARGET.relative_to(REPO)}")


if __name__ == "__main__":
    main()
