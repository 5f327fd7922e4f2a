"""Where every rendered figure comes from: the committed cell archive (studies/cells/), never a
data dir. `esmr study run` computes cells in a data dir, `docs/render/studies.py --data-dir`
copies the finished ones here, and every renderer reads only this."""

from __future__ import annotations

import re
from pathlib import Path

from esmr_assets.storage.warehouse import SQL_DIR, Query, run_query

REPO = Path(__file__).resolve().parents[2]
CELLS = REPO / "studies" / "cells"
RESULTS = REPO / "studies" / "results"
PENDING = REPO / "studies" / "pending"  # a re-run's finished cells until all its seeds are in (studies.py)
#: the main evaluation: the fair test's paper configuration (five training replicates of ESMR's agent)
MAIN_STUDY, MAIN_SCENARIO = "fair_test", "paper"


#: the SQL models a query over the archive may name: the archive holds cell tables only
MODELS = {path.stem: path.read_text().strip().rstrip(";") for path in sorted(SQL_DIR.glob("*.sql"))}


def _code(sql: str) -> str:
    """`sql` without its comments: what a model names in a comment is not a dependency."""
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)


def with_models(sql: str) -> str:
    """`sql` with the SQL models it names (and those they name) as common table expressions
    ahead of it, in dependency order: the same SQL as the warehouse's model assets."""
    def named(text: str) -> list[str]:
        return [m for m in MODELS if re.search(rf"\b{m}\b", _code(text))]

    order: list[str] = []

    def visit(model: str, path: tuple[str, ...] = ()) -> None:
        if model in path:
            raise ValueError(f"SQL models name each other: {' -> '.join((*path, model))}")
        for other in named(MODELS[model]):
            if other != model and other not in order:
                visit(other, (*path, model))
        if model not in order:
            order.append(model)

    for model in named(sql):
        visit(model)
    if not order:
        return sql
    ctes = ",\n".join(f"{m} as (\n{MODELS[m]}\n)" for m in order)
    sql = _code(sql).strip()
    head = re.match(r"with\s", sql, flags=re.I)
    return f"with {ctes},\n{sql[head.end():]}" if head else f"with {ctes}\n{sql}"


_PAIRED = """
    with e as (select scenario, seed, policy, effect from {effects}),
    d as (select a.effect - b.effect as diff from e as a join e as b on a.seed = b.seed
          where a.scenario = '{a}' and a.policy = '{a_policy}' and b.scenario = '{b}' and b.policy = '{b_policy}')
    select count(diff) as seeds, avg(diff) as mean, t_half_width(stddev_samp(diff), count(diff)) as half_width from d"""
#: one metric's effect of (scenario a, policy a) minus that of (scenario b, policy b), paired by
#: seed (the same seeds' users and noise), on the latent truth: its mean and 95 % t half-width
PAIRED_DIFFERENCE = _PAIRED.replace("{effects}", "policy_effects where label_source = 'true' and metric = '{metric}'")
#: the same within one feedback-style group (`style_effects`, whose effects are on the latent truth)
STYLE_PAIRED_DIFFERENCE = _PAIRED.replace("{effects}", "style_effects where feedback_style = '{style}' "
                                          "and metric = '{metric}'")


#: what each policy led with, as the studies' action tables report it: per scenario, policy,
#: predicted state and action of the cells that `{where}` keeps, the share of the state's days
#: the action led and the share of all the policy's days a bucket led (`bucket_days`), each a
#: mean over the seeds in which a seed where it never did counts 0
ACTION_MEANS = """
    with chosen as (select * from action_shares where {where}),
    seeds as (select scenario, policy, count(distinct seed) as seeds from chosen group by all),
    shares as (select scenario, policy, state, action, sum(share) as total from chosen group by all),
    bucket_days as (select scenario, policy, sum(share_of_days) as total from chosen where action <> 'ranker' group by all)
    select s.scenario, s.policy, s.state, s.action, s.total / n.seeds as share, n.seeds,
           coalesce(b.total, 0) / n.seeds as bucket_days
    from shares s join seeds n using (scenario, policy) left join bucket_days b using (scenario, policy)"""


def archived_query(study: str | None, scenario: str | None = None, preset: str = "paper",
                   cells: Path = CELLS) -> Query:
    """SQL over the archived cells (one study scenario's, or every cell for None), with the SQL
    models computed from them."""
    only = None if study is None else f"{study}.{scenario}"
    return lambda sql: run_query(cells / preset, with_models(sql), only)
