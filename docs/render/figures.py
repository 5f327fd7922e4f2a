"""Fill every figure quoted in the prose of README.md and docs/ from the committed cell archive
(never typed by hand).

A quoted figure is written between two invisible markers, `<!--fig:KEY-->` and `<!--/fig-->`;
this script replaces the text between them with the figure KEY names, and `--check` only
reports the markers whose text differs (a test runs it). KEY is one of:

- `effect:<study>.<scenario>:<policy>:<metric>`: the paired effect against the reference on
  the latent truth, mean over the archived seeds [95 % t interval across seeds];
- `reduction:<study>.<scenario>:<policy>:<metric>`: the same effect negated, for prose that
  says "removes 1.69 [1.12, 2.25] negative days";
- `sd:<study>.<scenario>:<policy>:<metric>`: the SD of the per-seed effects across seeds;
- `replicate_sd:<study>.<scenario>:<policy>@all:<metric>`: the SD between training replicates'
  effects within a seed, averaged over seeds;
- `ceiling:<study>.<scenario>:<policy>:<metric>`: the effect as a share of `oracle_best_feed`'s;
- `mean:<study>.<scenario>:<policy>:<metric>`: the metric's mean over seeds (latent truth);
- `share:<study>.<scenario>:<policy>:<metric>`: the same mean as a percentage;
- `difference:<study>.<scenario>:<policy>:<study>.<scenario>:<policy>:<metric>`: the first
  effect minus the second, paired by seed (the same seeds' users and noise), mean [95 % t
  interval across seeds];
- `style_effect`, `style_value`, `style_mean:<study>.<scenario>:<policy>:<style>:<metric>`: the
  same for one feedback-style group (`style_effects`): its paired effect [interval], its value
  [interval] or its value alone, over seeds;
- `style_difference:<study>.<scenario>:<policy>:<study>.<scenario>:<policy>:<style>:<metric>`:
  `difference` within one group;
- `style_range:<study>.<scenario>:<policy>:<metric>:<effect|value>`: the lowest to the highest
  of a policy's per-group means ("0.13–0.15", effects "+0.75 to +0.91");
- `range:<study>:<policy>:<metric>`: the lowest to the highest effect over the study's
  scenarios, "−0.23 to −0.06";
- `seeds_below`, `seeds_above:<study>.<scenario>:<policy>:<metric>`: how many seeds' own
  (bootstrap) intervals lie wholly below or above zero, "5 of 5";
- `meta`, `meta_share`, `meta_range:<study>.<scenario>:<asset>:<key>`: what a stage asset's
  metadata says (`asset_metadata`, docs/render/metadata.py), mean over the archived seeds
  (counts as whole numbers, "30,000"), that mean as a percentage, or its lowest to highest
  seed, "0.614–0.658"; `meta_text`: its words, the same in every seed; `meta_count:...:<words>`:
  in how many seeds it says those words, "8 of 10";
- `seeds:<study>.<scenario>`: how many seeds are archived;
- `previous:<study>.<scenario>:<policy>:<metric>`: the effect as the 5-seed archive of the
  old code had it (studies/previous/effects.parquet), for old-beside-new;
- `query:<name>:<argument>...`: one of QUERIES, a named SQL statement over the whole archive
  (the misreading rates per style, the acting buckets, the emotion models' agreement with the
  truth, the Q-values' spread).

    .venv/bin/python docs/render/figures.py            # rewrite the figures in place
    .venv/bin/python docs/render/figures.py --check    # list the figures that differ
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS  # noqa: E402
from sources import ACTION_MEANS, CELLS, PAIRED_DIFFERENCE, REPO, STYLE_PAIRED_DIFFERENCE, archived_query  # noqa: E402

from esmr_assets.core.vocabulary import NEGATIVE, POSITIVE  # noqa: E402
from esmr_assets.sim.content import NEGATIVE_EMOTIONS  # noqa: E402
from esmr_assets.storage.warehouse import WarehouseError  # noqa: E402

FIGURE = re.compile(r"<!--fig:(?P<key>[^>]*?)-->(?P<text>[^`<]*?)<!--/fig-->")  # never across code or another marker
#: a 95 % interval as the prose writes it: "[−0.08, 1.22]", or a mean ± its half-width: "0.128 ± 0.018"
INTERVAL = re.compile(r"\[[+\-−]?\d+\.\d+,\s+[+\-−]?\d+\.\d+\]|[+\-−]?\d+\.\d+\s+±\s+\d+\.\d+")
#: the blocks a renderer writes (docs/render/*.py): their figures are the renderers', not typed
RENDERED_BLOCK = re.compile(r"^(results|fairness|effects|fair-test|study-timings|findings-moved|session-response|study:[\w-]+)$")
#: decimals per metric (3 for the rest)
DIGITS = {"negative_days": 2, "engagement_reward": 2, "recovery_time": 2}
PREVIOUS = REPO / "studies" / "previous" / "effects.parquet"
#: the pages whose prose may quote figures
PAGES = (REPO / "README.md", REPO / "studies" / "README.md", *sorted(DOCS.glob("*.md")))
#: the pages whose every quoted interval is a marked figure (a test holds them to it); the
#: others still quote the 5-seed figures of the old code as typed text, until their rewrite
MARKED = tuple(REPO / page for page in (
    "README.md", "studies/README.md", "docs/design.md", "docs/gym.md", "docs/integrity.md", "docs/layering.md",
    "docs/operations.md", "docs/paper.md", "docs/performance.md", "docs/portable_bytes.md", "docs/results.md",
    "docs/simulator.md", "docs/studies.md", "docs/igl.md"))


def number(value: float, digits: int, signed: bool = False) -> str:
    """`value` as the prose writes it: a true minus sign, and a plus sign when `signed`."""
    value = value if round(value, digits) != 0 else 0.0  # no "−0.00"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def interval(mean: float, low: float, high: float, digits: int) -> str:
    return f"{number(mean, digits, signed=True)} [{number(low, digits)}, {number(high, digits)}]"


def plus_minus(row: dict, digits: int = 3) -> str:
    """A mean over seeds ± its 95 % t half-width."""
    return f"{number(row['mean'], digits)} ± {number(row['half_width'], digits)}"


#: a per-seed rate over a style's test users' active days (`emotion_confusion`): its mean over
#: seeds and 95 % t half-width; {rate} is the rate's SQL over one seed's rows
_CONFUSION_RATE = """
    with days as (select seed, {rate} as rate
        from emotion_confusion where scenario = '{0}' and feedback_style = '{1}' and split = 'test' group by seed)
    select avg(rate) as mean, t_half_width(stddev_samp(rate), count(*)) as half_width from days"""
#: reading a `truth` day as `read`
_MISREAD = _CONFUSION_RATE.replace(
    "{rate}", "coalesce(sum(user_days) filter (where true_emotion in {truth} and label in {read}), 0) "
              "/ sum(user_days) filter (where true_emotion in {truth})")
#: the deployed emotion model's agreement with the latent emotion
_AGREEMENT = _CONFUSION_RATE.replace("{rate}", "coalesce(sum(user_days) filter (where label = true_emotion), 0) "
                                               "/ sum(user_days)")
#: the Q-values' SD over the actions tried at least 30 times, in each seed's three most-visited states of ESMR's agent
_Q_SD = """
    with states as (select seed, state, sum(visits) as visits, stddev_samp(q) filter (where visits >= 30) as q_sd
                    from q_table where scenario = '{0}' and agent = 'esmr' group by all),
    ranked as (select *, row_number() over (partition by seed order by visits desc) as rank from states)
    select count(*) as states, min(q_sd) as low, median(q_sd) as median, max(q_sd) as high from ranked where rank <= 3"""
#: of the user-days (from day 1 on) on which an agent or one of its replicates acted, the share it led with `buckets`
_ACTING = """
    select coalesce(sum(user_days) filter (where action in {buckets}), 0) / sum(user_days) as share from action_shares
    where scenario = '{0}' and (policy = '{1}' or policy like '{1}@%') and action <> 'ranker'"""

#: the studies' action table (`ACTION_MEANS`) over the scenarios and policies of lists {0} and
#: {1} ("a+b"): the lowest and highest share of days a bucket led, and of the days of a predicted
#: state of list {2} on which bucket {3} led
_IN_LIST = "list_contains(string_split('{{{0}}}', '+'), {1})"
_ACTION_TABLE = ACTION_MEANS.replace("{where}", f"{_IN_LIST.format(0, 'scenario')} and {_IN_LIST.format(1, 'policy')}")
_BUCKET_DAYS = f"""
    select min(bucket_days) as low, max(bucket_days) as high
    from (select distinct scenario, policy, bucket_days from ({_ACTION_TABLE}))"""
_LED_WITH = f"""
    select min(led) as low, max(led) as high
    from (select scenario, policy, state, coalesce(sum(share) filter (where action = '{{3}}'), 0) as led
          from ({_ACTION_TABLE}) where {_IN_LIST.format(2, 'state')} group by all)"""


def _metadata(name: str, asset: str, key: str) -> str:
    """A common table `name` (seed, `name`) of one `asset_metadata` entry of scenario {0}, per seed."""
    return (f"{name} as (select seed, value as {name} from asset_metadata "
            f"where scenario = '{{0}}' and asset = '{asset}' and key = '{key}')")


def percent_of(share: float) -> str:
    """A share as a whole percentage, halves rounded up (not to even)."""
    return f"{math.floor(100 * share + 0.5)} %".replace("-", "−")


def percent(row: dict) -> str:
    return percent_of(row["share"])


def percent_range(row: dict) -> str:
    """"84–99 %", or "84 %" when both ends round alike."""
    low, high = percent_of(row["low"]), percent_of(row["high"])
    return low if low == high else f"{low.removesuffix(' %')}–{high}"


#: name -> (SQL over the whole archive returning one row, its arguments as {0}, {1}..., how to write that row)
QUERIES: dict[str, tuple[str, Callable[[dict], str]]] = {
    # an upset day (stressed, disappointed) read as pleased (happy, excited), and the reverse: <scenario>:<style>
    "upset_read_as_pleased": (_MISREAD.replace("{truth}", str(NEGATIVE)).replace("{read}", str(POSITIVE)), plus_minus),
    "pleased_read_as_upset": (_MISREAD.replace("{truth}", str(POSITIVE)).replace("{read}", str(NEGATIVE)), plus_minus),
    # <scenario>:<style>: the deployed emotion model's exact agreement with the latent emotion
    "style_agreement": (_AGREEMENT, plus_minus),
    # <scenario>:<agent>: the buckets it led with on its acting days
    "negative_bucket_share": (_ACTING.replace("{buckets}", str(NEGATIVE_EMOTIONS)), percent),
    "happy_bucket_share": (_ACTING.replace("{buckets}", "('happy')"), percent),
    # <scenarios>:<policies> ("a+b"): the lowest and highest share of days on which a bucket led
    "bucket_days_range": (_BUCKET_DAYS, percent_range),
    # <scenarios>:<policies>:<states>:<bucket>: the lowest and highest share of a predicted state's days it led
    "led_with_range": (_LED_WITH, percent_range),
    # <scenario>:<policy>:<metric>:<first seed>:<last seed>: the mean effect over those seeds only
    "effect_over_seeds": ("select avg(effect) as mean from policy_effects where label_source = 'true' "
                          "and scenario = '{0}' and policy = '{1}' and metric = '{2}' and seed between {3} and {4}",
                          lambda row: number(row["mean"], 2, signed=True)),
    # <scenario>:<policy>:<metric>:<days>: the mean effect per user-day of a horizon of <days>
    "effect_per_user_day": ("select avg(effect) / nullif(cast('{3}' as integer), 0) as mean from policy_effects "
                            "where label_source = 'true' and isfinite(effect) "
                            "and scenario = '{0}' and policy = '{1}' and metric = '{2}'",
                            lambda row: number(row["mean"], 3)),
    # <scenario>:<policy>:<metric>: its mean effect per unit of the share of user-days it acts on
    # (`rl_active_share`): what the hybrid's switch costs or gains per day it is in control
    "effect_per_acting_share": (
        "with e as (select avg(effect) as effect from policy_effects where label_source = 'true' and isfinite(effect) "
        "and scenario = '{0}' and policy = '{1}' and metric = '{2}'), "
        "s as (select mean as share from policy_comparison where label_source = 'true' and scenario = '{0}' "
        "and policy = '{1}' and metric = 'rl_active_share') "
        "select e.effect / nullif(s.share, 0) as mean from e, s", lambda row: number(row["mean"], 1, signed=True)),
    # <scenario>:<emotion>: the share of all user-days whose latent emotion it is, mean over seeds
    "latent_share": (f"with {_metadata('c', 'user_day_logs', 'true_emotion_counts.{1}')}, "
                     f"{_metadata('t', 'user_day_logs', 'dagster/row_count')} "
                     "select avg(c / t) as share from c join t using (seed)", percent),
    # <scenario>: the share of impressions skipped (not watched), mean over seeds
    "skipped_share": (f"with {_metadata('w', 'impressions', 'watched_share')} select avg(1 - w) as share from w",
                      percent),
    # <scenario>: impressions per active (not churned) user-day, mean over seeds
    "impressions_per_active_day": (
        f"with {_metadata('i', 'impressions', 'dagster/row_count')}, "
        f"{_metadata('d', 'user_day_logs', 'dagster/row_count')}, "
        f"{_metadata('c', 'user_day_logs', 'true_emotion_counts.churned')} "
        "select avg(i / (d - c)) as mean from i join d using (seed) join c using (seed)",
        lambda row: f"{row['mean']:.0f}"),
    # <scenario>:<feature>: the ranker's share of the gain on one feature, mean over seeds
    "gain_share": ("select avg(gain_share) as share from ranker_feature_importance where scenario = '{0}' "
                   "and feature = '{1}'", percent),
    # <scenario>:<model>:<column>: a column of `emotion_model_scores`, mean over seeds
    "model_score": ("select avg({2}) as mean from emotion_model_scores where scenario = '{0}' and model = '{1}'",
                    lambda row: number(row["mean"], 3)),
    # <scenario>:<model>: an emotion model's agreement with the latent emotion on the test users' days
    "truth_agreement": ("select avg(accuracy_vs_truth) as share from emotion_model_scores "
                        "where scenario = '{0}' and model = '{1}'", percent),
    # <scenario>: the Q-value spreads of ESMR's agent in its most-visited states
    "q_sd_states": (_Q_SD, lambda row: str(row["states"])),
    "q_sd_median": (_Q_SD, lambda row: number(row["median"], 2)),
    "q_sd_range": (_Q_SD, lambda row: f"{number(row['low'], 2)}–{number(row['high'], 2)}"),
}
ARGUMENT = re.compile(r"^[\w.@+-]+$")  # "+" joins a list


@dataclass
class Archive:
    """The archive's cross-seed tables, each read once and only when a figure needs it (a
    render quotes hundreds of figures)."""

    cells: Path = CELLS
    preset: str = "paper"

    def __post_init__(self) -> None:
        self.query = archived_query(None, preset=self.preset, cells=self.cells)

    @functools.cached_property
    def effects(self) -> pl.DataFrame:
        return self.query("select scenario, policy, metric, effect, sd, ci95_low, ci95_high, seeds, replicate_sd, "
                          "share_of_ceiling, seeds_below_zero, seeds_above_zero from policy_effects_across_seeds "
                          "where label_source = 'true'")

    @functools.cached_property
    def means(self) -> pl.DataFrame | None:
        if not (self.cells / self.preset / "evaluation_metrics").is_dir():
            return None
        return self.query("select scenario, policy, metric, mean, seeds from policy_comparison "
                          "where label_source = 'true'")

    @functools.cached_property
    def styles(self) -> pl.DataFrame:
        return self.query("select scenario, policy, feedback_style, metric, value, value_ci95_low, value_ci95_high, "
                          "effect, ci95_low, ci95_high from style_effects_across_seeds")

    def _style(self, key: str, parts: list[str]) -> str:
        """A `style_*` figure: one group's, or the range over the groups."""
        kind = key.partition(":")[0]
        if kind == "style_difference" and len(parts) == 6 and all(ARGUMENT.match(a) for a in parts):
            a, a_policy, b, b_policy, style, metric = parts
            return self._difference(key, STYLE_PAIRED_DIFFERENCE.format(
                a=a, a_policy=a_policy, b=b, b_policy=b_policy, style=style, metric=metric), metric)
        if kind == "style_range" and len(parts) == 4 and parts[3] in ("effect", "value"):
            scenario, policy, metric, column = parts
            values = self.styles.filter(scenario=scenario, policy=policy, metric=metric)[column]
            digits, signed = DIGITS.get(metric, 3), column == "effect"
            return _span(key, values, lambda v: number(v, digits, signed), " to " if signed else "–")
        if kind in ("style_effect", "style_value", "style_mean") and len(parts) == 4:
            scenario, policy, style, metric = parts
            r = self._row(self.styles, key, scenario, policy, metric, feedback_style=style)
            digits = DIGITS.get(metric, 3)
            needed = {"style_mean": ("value",), "style_value": ("value", "value_ci95_low", "value_ci95_high"),
                      "style_effect": ("effect", "ci95_low", "ci95_high")}[kind]
            if any(r[column] is None for column in needed):
                raise KeyError(f"{key}: not archived across two seeds or more")
            if kind == "style_mean":
                return number(r["value"], digits)
            if kind == "style_value":
                return f"{number(r['value'], digits)} [{number(r['value_ci95_low'], digits)}, " \
                       f"{number(r['value_ci95_high'], digits)}]"
            return interval(r["effect"], r["ci95_low"], r["ci95_high"], digits)
        raise KeyError(f"{key}: not a figure (see docs/render/figures.py)")

    def _difference(self, key: str, sql: str, metric: str) -> str:
        r = self.query(sql)
        mean, half = r["mean"][0], r["half_width"][0]
        if mean is None or half is None:
            raise KeyError(f"{key}: fewer than two seeds archived for both")
        return interval(mean, mean - half, mean + half, DIGITS.get(metric, 3))

    @functools.cached_property
    def metadata(self) -> pl.DataFrame | None:
        if not (self.cells / self.preset / "asset_metadata").is_dir():
            return None
        return self.query("select scenario, seed, asset, key, value, text from asset_metadata")

    def _meta(self, key: str, kind: str, scenario: str, asset: str, name: str, words: str | None = None) -> str:
        """A `meta*` figure: one metadata entry over the archived seeds."""
        rows = None if self.metadata is None else self.metadata.filter(scenario=scenario, asset=asset, key=name)
        if rows is None or rows.is_empty():
            raise KeyError(f"{key}: nothing archived for it")
        if kind == "meta_count":
            return f"{(rows['text'] == words).sum()} of {rows.height}"
        if kind == "meta_text":
            texts = rows["text"].unique()
            if texts.len() != 1 or texts[0] is None:
                raise KeyError(f"{key}: not one text in every seed")
            return texts[0]
        values = rows["value"].drop_nulls()
        if values.len() != rows.height:
            raise KeyError(f"{key}: not a number in every seed")
        if kind == "meta_share":
            return percent_of(values.mean())
        whole = bool((values == values.round(0)).all())  # a count: whole, with thousands separators

        def write(value: float) -> str:
            return f"{math.floor(value + 0.5):,}" if whole else number(value, 3)
        if kind == "meta_range":
            return _span(key, values, write, "–")
        return write(values.mean())

    @functools.cached_property
    def previous(self) -> pl.DataFrame | None:
        return pl.read_parquet(PREVIOUS) if PREVIOUS.is_file() else None

    def _row(self, frame: pl.DataFrame | None, key: str, scenario: str, policy: str, metric: str, **more: str) -> dict:
        """The one row of `frame` with these values (and the `more` columns')."""
        if frame is None:
            raise KeyError(f"{key}: nothing archived for it")
        rows = frame.filter(scenario=scenario, policy=policy, metric=metric, **more)
        if rows.height != 1:
            raise KeyError(f"{key}: {rows.height} archived rows")
        return rows.row(0, named=True)

    def figure(self, key: str) -> str:
        kind, _, rest = key.partition(":")
        parts = rest.split(":")
        if kind in ("effect", "reduction", "sd", "replicate_sd", "ceiling", "previous", "mean", "share") \
                and len(parts) == 3:
            scenario, policy, metric = parts
            digits = DIGITS.get(metric, 3)
            if kind in ("sd", "replicate_sd", "ceiling"):
                value = self._row(self.effects, key, scenario, policy, metric)[
                    {"sd": "sd", "replicate_sd": "replicate_sd", "ceiling": "share_of_ceiling"}[kind]]
                if value is None:
                    raise KeyError(f"{key}: not defined for it")
                return percent_of(value) if kind == "ceiling" else number(value, digits)
            if kind in ("effect", "reduction", "previous"):
                r = self._row(self.previous if kind == "previous" else self.effects, key, scenario, policy, metric)
                if kind == "reduction":
                    return f"{number(-r['effect'], digits)} [{number(-r['ci95_high'], digits)}, {number(-r['ci95_low'], digits)}]"
                return interval(r["effect"], r["ci95_low"], r["ci95_high"], digits)
            r = self._row(self.means, key, scenario, policy, metric)
            return percent_of(r["mean"]) if kind == "share" else number(r["mean"], digits)
        if kind == "difference" and len(parts) == 5 and all(ARGUMENT.match(a) for a in parts):
            a, a_policy, b, b_policy, metric = parts
            return self._difference(
                key, PAIRED_DIFFERENCE.format(a=a, a_policy=a_policy, b=b, b_policy=b_policy, metric=metric), metric)
        if kind.startswith("style_"):
            return self._style(key, parts)
        if kind == "range" and len(parts) == 3:
            study, policy, metric = parts
            effects = self.effects.filter(pl.col("scenario").str.starts_with(f"{study}."), policy=policy,
                                          metric=metric)["effect"]
            return _span(key, effects, lambda v: number(v, DIGITS.get(metric, 3), signed=True), " to ")
        if kind in ("seeds_below", "seeds_above") and len(parts) == 3:
            r = self._row(self.effects, key, *parts)
            return f"{r['seeds_below_zero' if kind == 'seeds_below' else 'seeds_above_zero']} of {r['seeds']}"
        if kind in ("meta", "meta_share", "meta_range", "meta_text") and len(parts) == 3 \
                or kind == "meta_count" and len(parts) == 4:
            return self._meta(key, kind, *parts)
        if kind == "seeds" and len(parts) == 1:
            seeds = self.effects.filter(pl.col("scenario") == parts[0])["seeds"]
            if seeds.is_empty():
                raise KeyError(f"{key}: no archived cells")
            return str(int(seeds.max()))
        if kind == "query" and parts[0] in QUERIES and all(ARGUMENT.match(a) for a in parts[1:]):
            sql, write = QUERIES[parts[0]]
            wanted = len(set(re.findall(r"\{(\d+)\}", sql)))
            if len(parts) - 1 != wanted:
                raise KeyError(f"{key}: {parts[0]} takes {wanted} arguments")
            rows = self.query(sql.format(*parts[1:]))
            if rows.height != 1 or any(v is None for v in rows.row(0)):
                raise KeyError(f"{key}: nothing archived for it")
            return write(rows.row(0, named=True))
        raise KeyError(f"{key}: not a figure (see docs/render/figures.py)")


def _span(key: str, values: pl.Series, write: Callable[[float], str], between: str) -> str:
    """The lowest to the highest of `values` (nulls left out), each written by `write`."""
    values = values.drop_nulls()
    if values.is_empty():
        raise KeyError(f"{key}: nothing archived for it")
    return f"{write(values.min())}{between}{write(values.max())}"


def fill(text: str, archive: Archive) -> tuple[str, list[str]]:
    """`text` with every figure rewritten, and the problems: keys naming nothing archived."""
    problems: list[str] = []

    def rewrite(match: re.Match) -> str:
        key = match["key"].strip()
        try:
            return f"<!--fig:{key}-->{archive.figure(key)}<!--/fig-->"
        except KeyError as error:
            problems.append(str(error.args[0]))
        except WarehouseError as error:  # a table the archive does not hold
            problems.append(f"{key}: {error}")
        return match[0]

    return FIGURE.sub(rewrite, text), problems


def unmarked_intervals(text: str) -> list[str]:
    """Intervals in `text`'s prose outside figure markers, rendered blocks and code: figures
    typed by hand (a block no renderer writes is prose too)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!-- ([\w:.\-]+):start -->.*?<!-- \1:end -->",
                  lambda block: "" if RENDERED_BLOCK.match(block[1]) else block[0], text, flags=re.S)
    text = FIGURE.sub("", text)
    return INTERVAL.findall(text)


def render(pages=PAGES, archive: Archive | None = None, check: bool = False) -> list[str]:
    """Rewrite (or with `check` only compare) every figure of `pages`; return the differences
    and problems, one line each."""
    archive = archive or Archive()
    report = []
    for page in pages:
        text = page.read_text()
        filled, problems = fill(text, archive)
        report += [f"{page.name}: {problem}" for problem in problems]
        if filled != text:
            if check:  # marker by marker: fill keeps their number and order
                report += [f"{page.name}: {new['key']}: {old['text']!r} is {new['text']!r} in the archive"
                           for old, new in zip(FIGURE.finditer(text), FIGURE.finditer(filled))
                           if old["text"] != new["text"]]
            else:
                page.write_text(filled)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the figures that differ from the archive")
    args = parser.parse_args()
    report = render(check=args.check)
    print("\n".join(report) or "every figure matches the archive")
    if report and args.check:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
