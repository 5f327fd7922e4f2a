"""The responsive session's effect on one day, recomputed from the simulator's code: the block
between `<!-- session-response:start -->` and `<!-- session-response:end -->` (docs/simulator.md).

A mechanism figure, not a study's: for each `simulation.session_response` ρ, the same users with
the same noise live day 0 twice, served the pool's most engaging videos and then its least
engaging ones, and the table gives their mean watch and scroll minutes (users not churned that
day), mean over seeds 0–9. It needs no archive; a test re-renders it.

    .venv/bin/python docs/render/simulator.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import esmr_assets  # noqa: F401  (pins the numeric kernels before numpy loads)
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from blocks import DOCS, write_block  # noqa: E402

from esmr_assets.core.rng import stream  # noqa: E402
from esmr_assets.core.settings import SimulationSettings, load_settings  # noqa: E402
from esmr_assets.orchestration.metadata import markdown_table_text  # noqa: E402
from esmr_assets.sim.content import VideoPool, simulate_videos  # noqa: E402
from esmr_assets.sim.day import UserState, churn_today, draw_day_noise, simulate_day  # noqa: E402
from esmr_assets.sim.population import Population, simulate_users  # noqa: E402

RESPONSES = (0.0, 0.25, 0.5, 1.0)
SEEDS = range(10)
USERS = 300


def one_day(settings: SimulationSettings, seed: int) -> dict[str, float]:
    """Day 0 of seed `seed`'s users under the most and the least engaging feed: their mean watch
    and scroll minutes (the users active that day)."""
    videos = simulate_videos(settings.n_videos, stream(seed, "videos"))
    pool = VideoPool.from_frame(videos)
    pop = Population.from_frame(simulate_users(settings, stream(seed, "users")))
    noise = draw_day_noise(stream(seed, "user_day", 0, 0), pop, 0, settings.feed_length, settings)
    state = UserState.initial(pop)
    churned = churn_today(state, pop, noise, settings)
    ranked = videos.sort("engagement_score", descending=True)["video_id"].to_numpy()
    minutes = {}
    for name, order in (("most", ranked), ("least", ranked[::-1])):
        feed = np.broadcast_to(order[: settings.feed_length], (pop.size, settings.feed_length)).copy()
        day = simulate_day(feed, np.ones_like(feed, dtype=bool), 0, pool, pop, state, noise, churned, settings)
        minutes[f"watch_{name}"] = float(day.features["watch_minutes"][~churned].mean())
        minutes[f"scroll_{name}"] = float(day.features["scroll_minutes"][~churned].mean())
    return minutes


def table() -> str:
    rows = []
    for response in RESPONSES:
        settings = load_settings("paper", {"simulation": {"n_users": USERS, "session_response": response}},
                                 whole_graph=False).simulation
        days = [one_day(settings, seed) for seed in SEEDS]
        mean = {key: np.mean([day[key] for day in days]) for key in days[0]}
        rows.append({"ρ": f"{response:g}", "most engaging": f"{mean['watch_most']:.1f}",
                     "least engaging": f"{mean['watch_least']:.1f}",
                     "scroll, most / least": f"{mean['scroll_most']:.1f} / {mean['scroll_least']:.1f}"})
    return markdown_table_text(pl.DataFrame(rows))


def render(docs: Path = DOCS) -> Path | None:
    return write_block("session-response", [table()], docs)


if __name__ == "__main__":
    print(f"rewrote the session-response block of {render()}")
