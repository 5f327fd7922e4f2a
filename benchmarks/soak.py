"""Soak: a smoke study of at least 50 cells, killed again and again, then compared byte for byte.

1. The reference: the study run uninterrupted in a data dir of its own.
2. The soak: the same study in another data dir, SIGKILLed at random times (at least
   `--kills`, each of a random process of the run: `esmr` itself or a process it started)
   and resumed each time, until it finishes.
3. Every file of every cell of the two is compared (tables, models, plots, records and keys;
   only the wall times in `.seconds` may differ), and `esmr verify` checks the soaked data dir.
4. Eight cells at once: eight `esmr run` processes, one cell each, into one data dir and one
   instance, against the same eight cells of the reference.

    .venv/bin/python benchmarks/soak.py                    # 5 scenarios x 10 seeds at smoke (about an hour)
    .venv/bin/python benchmarks/soak.py --seeds 0-1 --kills 3   # a quick look

It prints cells, kills, files compared and every difference; docs/integrity.md has its report.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SCENARIOS = {"alpha_1": {}, "alpha_0": {"policy": {"alpha": 0.0}}, "alpha_2": {"policy": {"alpha": 2.0}},
             "beta_0": {"policy": {"beta": 0.0}}, "streak_1": {"policy": {"rl_streak": 1}}}


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_spec(folder: Path, seeds: str) -> Path:
    lines = ['description = "soak: a smoke study killed at random"', 'preset = "smoke"', f'seeds = "{seeds}"']
    for name, overrides in SCENARIOS.items():
        lines += ["", "[[scenario]]", f'name = "{name}"'] + ([f"overrides = {_toml(overrides)}"] if overrides else [])
    path = folder / "soak.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ESMR_DATA_DIR")}


def study_run(spec: Path, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([BIN / "esmr", "study", "run", str(spec), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)  # its own process group: every process it starts


def group_pids(process: subprocess.Popen) -> list[int]:
    """The live processes of the run's process group (esmr and whatever it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == process.pid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def soak(spec: Path, data_dir: Path, kills: int, rng: random.Random, max_wait: float) -> tuple[int, int, list[str]]:
    """Kill and resume until `kills` kills are done, then let the run finish; (kills, runs, victims)."""
    done, runs, victims = 0, 0, []
    while True:
        process = study_run(spec, data_dir)
        runs += 1
        if done >= kills:
            _, err = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"the final resumption failed:\n{err[-3000:]}")
            return done, runs, victims
        deadline = time.monotonic() + rng.uniform(3, max_wait)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        if process.poll() is not None:  # finished (or failed) before the kill: look at it, go on
            if process.returncode != 0:
                raise SystemExit(f"a run failed on its own:\n{process.stderr.read()[-3000:]}")
            print(f"  run {runs} finished before its kill")
            continue
        pids = group_pids(process)
        victim = rng.choice(pids)
        name = Path(f"/proc/{victim}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
        os.kill(victim, signal.SIGKILL)
        if victim != process.pid:
            time.sleep(rng.uniform(0, 2))  # the rest of the run may notice, fail or go on for a while
        os.killpg(process.pid, signal.SIGKILL)  # then the whole run goes, as a killed terminal takes it
        process.wait()
        done += 1
        victims.append(f"{'esmr' if victim == process.pid else 'child'}: {name}")
        print(f"  kill {done}: after {runs} run(s), {'the esmr process' if victim == process.pid else name}")


def digests(root: Path, cells_only: bool = True) -> dict[str, str]:
    """Every file of every cell under a data dir (not the instance, not the wall times)."""
    pattern = "scenario=*/seed=*/*" if cells_only else "*"
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob(pattern)) if p.is_file() and p.name != ".seconds" and ".dagster" not in p.parts}


def eight_at_once(reference: Path, work: Path, seeds: list[int]) -> tuple[float, int, list[str]]:
    """Eight `esmr run` cells (baseline, the spec's alpha_1 scenario) at once into one data dir."""
    together = work / "eight"
    started = time.perf_counter()
    processes = [subprocess.Popen([BIN / "esmr", "run", "--seed", str(seed), "--preset", "smoke", "--data-dir",
                                   str(together)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=_env()) for seed in seeds]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"one of the eight failed:\n{err[-3000:]}")
    seconds = time.perf_counter() - started
    mine = digests(together / "smoke")
    theirs = {k.replace("scenario=soak.alpha_1/", "scenario=baseline/"): v for k, v in digests(reference / "smoke").items()
              if "scenario=soak.alpha_1/" in k and int(k.split("seed=")[1].split("/")[0]) in seeds}
    differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    return seconds, len(mine), differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-9", help="the study's seeds (5 scenarios each; default 0-9: 50 cells)")
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs at least (default 12)")
    parser.add_argument("--max-wait", type=float, default=90.0, help="longest wait before a kill, seconds")
    parser.add_argument("--random-seed", type=int, default=2026)
    parser.add_argument("--work", default="", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.random_seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="esmr-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = write_spec(work, args.seeds)
    print(f"soak under {work}: spec {spec.name}, seeds {args.seeds}, {len(SCENARIOS)} scenarios")

    started = time.perf_counter()
    reference = study_run(spec, work / "reference")
    _, err = reference.communicate()
    if reference.returncode != 0:
        raise SystemExit(f"the reference run failed:\n{err[-3000:]}")
    reference_seconds = time.perf_counter() - started
    print(f"reference: uninterrupted in {reference_seconds:.0f} s")

    started = time.perf_counter()
    kills, runs, victims = soak(spec, work / "soaked", args.kills, rng, args.max_wait)
    soak_seconds = time.perf_counter() - started
    print(f"soak: {kills} kills over {runs} runs in {soak_seconds:.0f} s")

    ref, soaked = digests(work / "reference" / "smoke"), digests(work / "soaked" / "smoke")
    cells = {"/".join(k.split("/")[-3:-1]) for k in ref}  # scenario=<s>/seed=<k>
    differ = sorted(k for k in ref.keys() | soaked.keys() if ref.get(k) != soaked.get(k))
    leftovers = sorted(str(p) for p in (work / "soaked").rglob("*.tmp"))
    verify = subprocess.run([BIN / "esmr", "verify", "--data-dir", str(work / "soaked")], capture_output=True,
                            text=True, env=_env())
    from esmr_assets.studies.sweeps import parse_seed_ranges

    seeds = parse_seed_ranges(args.seeds)[:8]
    eight_seconds, eight_files, eight_differ = eight_at_once(work / "reference", work, seeds)

    print("\nsoak report")
    print(f"  cells:              {len(cells)} (scenario x seed)")
    print(f"  kills:              {kills} SIGKILLs over {runs} runs "
          f"({sum(v.startswith('esmr') for v in victims)} of esmr itself, {sum(v.startswith('child') for v in victims)}"
          " of a process it started)")
    print(f"  files compared:     {len(ref)} (every file of every cell but the wall times)")
    print(f"  differences:        {len(differ)}" + "".join(f"\n    {k}" for k in differ[:20]))
    print(f"  temp files left:    {len(leftovers)}")
    print(f"  esmr verify:        {verify.stdout.strip().splitlines()[-1]}")
    print(f"  wall time:          reference {reference_seconds:.0f} s, soak {soak_seconds:.0f} s")
    print(f"  {len(seeds)} cells at once:    {eight_files} files in {eight_seconds:.0f} s, "
          f"{len(eight_differ)} differ from the reference" + "".join(f"\n    {k}" for k in eight_differ[:20]))
    if differ or leftovers or eight_differ or verify.returncode != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
