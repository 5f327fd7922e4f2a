"""What reuse saves: an α-sweep of 4 scenarios as one study, beside the reference run
`four_full_graphs` (the same 4 scenarios each materialized from scratch in a data dir of its
own, where nothing can be reused), side by side; and the expectation, one full graph plus
3 × (agents + rollouts + metrics) taken from the reference's own per-step times.

    .venv/bin/python benchmarks/reuse.py                  # smoke, seed 0 (about 5 minutes)
    .venv/bin/python benchmarks/reuse.py --preset paper   # the figures in the README (about 25 minutes)

With --studies DATA_DIR it also prints the recorded wall time of every study run there
(`<preset>/studies/<study>.timing-<run>.json`, one per `esmr study run`) and the share reuse saved.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ALPHAS = (1.0, 0.0, 0.5, 2.0)
#: the steps a change of policy.alpha reaches (labels as `esmr run` prints them)
REACHED = ("q_agents, q_learning_curve, q_table", "policy_rollouts", "evaluation_metrics", "user_metrics",
           "policy_effects", "style_effects")


def timed(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "esmr"), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"esmr {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def step_seconds(stdout: str) -> dict[str, float]:
    """The per-asset seconds of one seed from `esmr run`'s timing table."""
    lines = stdout.splitlines()
    start = lines.index("wall time per asset") + 2
    seconds = {}
    for line in lines[start:]:
        match = re.match(r"^(.*?)\s+(\d+\.\d+)s(\s+<- slowest)?$", line)
        if not match:
            break
        seconds[match.group(1).strip()] = float(match.group(2))
    return seconds


def print_study_timings(data_dir: Path) -> None:
    from esmr_assets.studies.report import study_timings

    print("\nrecorded study runs (esmr study run), one row per run: wall time and what reuse saved")
    print(f"{'study':<22}{'wall':>10}{'saved':>10}{'share':>8}{'computed':>10}{'reused':>8}")
    for t in study_timings(data_dir).iter_rows(named=True):
        computed = "–" if t["steps_computed"] is None else t["steps_computed"]
        study = t["study"] + (" (stopped)" if t["complete"] is False else "")
        print(f"{study:<22}{t['wall_seconds']:>9.0f}s{t['reuse_saved_seconds']:>9.0f}s{t['share_saved']:>8.0%}"
              f"{computed:>10}{t['steps_reused']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--studies", type=Path, default=None, help="a data dir whose study timings to print")
    args = parser.parse_args()
    if args.studies is not None:
        print_study_timings(args.studies)
        return
    with tempfile.TemporaryDirectory(prefix="esmr-reuse-") as tmp:
        work = Path(tmp)
        full, reached = [], []
        for n, alpha in enumerate(ALPHAS):
            overrides = json.dumps({"policy": {"alpha": alpha}})
            seconds, out = timed("run", "--seed", str(args.seed), "--preset", args.preset, "--data-dir",
                                 str(work / f"full-{n}"), "--overrides", overrides)
            steps = step_seconds(out)
            full.append(seconds)
            reached.append(sum(steps[label] for label in REACHED))
            print(f"four_full_graphs: alpha {alpha}: {seconds:.1f} s (agents + rollouts + metrics {reached[-1]:.1f} s)")
        spec = work / "alpha_sweep.toml"
        spec.write_text(f'preset = "{args.preset}"\nseeds = "{args.seed}"\n' + "".join(
            f'[[scenario]]\nname = "alpha_{alpha}"\noverrides = {{ policy = {{ alpha = {alpha} }} }}\n'
            for alpha in ALPHAS))
        swept, out = timed("study", "run", str(spec), "--data-dir", str(work / "study"))
        (record,) = (work / "study" / args.preset / "studies").glob("alpha_sweep.timing-*.json")  # its one run
        timing = json.loads(record.read_text())
    expected = full[0] + sum(reached[1:])
    print(f"\nα-sweep of {len(ALPHAS)} scenarios, seed {args.seed}, {args.preset} (wall time of the whole command)")
    print(f"{'run':<40}{'seconds':>10}{'vs four_full_graphs':>22}")
    print(f"{'four_full_graphs (reference)':<40}{sum(full):>10.1f}{1.0:>21.2f}x")
    print(f"{'one study with reuse':<40}{swept:>10.1f}{swept / sum(full):>21.2f}x")
    print(f"{'expected: 1 full + 3 x (agents..metrics)':<40}{expected:>10.1f}{expected / sum(full):>21.2f}x")
    print(f"steps computed {timing['steps_computed']}, reused {timing['steps_reused']}; "
          f"the study's own estimate of what reuse saved: {timing['reuse_saved_seconds']:.1f} s")


if __name__ == "__main__":
    main()
