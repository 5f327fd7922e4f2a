"""Wall time and peak RSS per asset of one seed's whole graph, at `paper` and at `large`.

Every asset runs in a fresh subprocess, as Dagster's multiprocess executor runs steps, so
each peak RSS is that asset's own (the import of dagster, torch and the package included;
the first row measures the import alone). `paper` is the named reference: each `large`
figure is printed beside its ratio to paper's. The issue's targets for `large` on a 2-core,
24 GB machine: end to end in at most 30 minutes and 12 GB.

    .venv/bin/python benchmarks/scale.py                   # paper, then large (about 25 min)
    .venv/bin/python benchmarks/scale.py --presets paper   # one preset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REFERENCE = "paper"
TARGET_SECONDS = {"large": 30 * 60}
TARGET_MB = {"large": 12 * 1024}
IMPORT_ROW = "(import only)"


def child(preset: str, data_dir: Path, seed: int, index: int) -> None:
    """Run step `index` of the plan for `seed` (-1: only import); print its label, wall time
    and this process's peak RSS as JSON."""
    from esmr_assets.definitions import defs
    from esmr_assets.orchestration.partitions import register_cells
    from esmr_assets.orchestration.resources import run_config
    from esmr_assets.orchestration.runner import open_instance, plan_steps, run_step
    from esmr_assets.storage.cells import Cell

    label, seconds = IMPORT_ROW, 0.0
    if index >= 0:
        step = plan_steps(defs)[index]
        label = step.label
        with open_instance(data_dir / ".dagster") as instance:
            cell = Cell("baseline", seed)
            register_cells(instance, [cell])
            config = run_config(preset, data_dir)
            seconds = run_step(defs, step, cell if step.partitioned else None, config, instance)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"label": label, "seconds": seconds, "peak_rss_mb": peak_mb}))


def measure(preset: str, data_dir: Path, seed: int, index: int) -> dict:
    argv = [sys.executable, __file__, "--child", preset, str(data_dir), str(seed), str(index)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{preset}: step {index} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_preset(preset: str, seed: int, data_dir: Path) -> list[dict]:
    from esmr_assets.definitions import defs
    from esmr_assets.orchestration.runner import plan_steps

    rows = []
    steps = plan_steps(defs)
    for index in [-1, *(n for n, step in enumerate(steps) if not step.by_study)]:  # a study report is no seed's
        row = measure(preset, data_dir, seed, index)
        rows.append(row)
        print(f"  {preset}: {row['label']}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:,.0f} MB",
              file=sys.stderr, flush=True)
    return rows


def report(results: dict[str, list[dict]]) -> None:
    presets = list(results)
    labels = [row["label"] for row in results[presets[0]]]
    compare = REFERENCE in results and len(presets) > 1
    header = ["asset"]
    for preset in presets:
        header += [f"{preset} s", f"{preset} MB"]
        if compare and preset != REFERENCE:
            header += [f"x {REFERENCE} s", f"x {REFERENCE} MB"]
    table = [header]

    def cells(rows_by_label: dict[str, dict], label: str) -> list[str]:
        out = []
        for preset in presets:
            row = rows_by_label[preset][label]
            out += [f"{row['seconds']:,.1f}", f"{row['peak_rss_mb']:,.0f}"]
            if compare and preset != REFERENCE:
                ref = rows_by_label[REFERENCE][label]
                out += [f"{row['seconds'] / max(ref['seconds'], 1e-9):,.1f}" if ref["seconds"] else "",
                        f"{row['peak_rss_mb'] / ref['peak_rss_mb']:,.1f}"]
        return out

    by_label = {p: {row["label"]: row for row in results[p]} for p in presets}
    for label in labels:
        table.append([label, *cells(by_label, label)])
    totals = {p: {"total": {"seconds": sum(r["seconds"] for r in results[p]),
                            "peak_rss_mb": max(r["peak_rss_mb"] for r in results[p])}} for p in presets}
    table.append(["total (s) / peak (MB)", *cells(totals, "total")])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    for preset in presets:
        if preset in TARGET_SECONDS:
            total = totals[preset]["total"]
            ok_time = total["seconds"] <= TARGET_SECONDS[preset]
            ok_mem = total["peak_rss_mb"] <= TARGET_MB[preset]
            print(f"{preset} targets: end to end {total['seconds'] / 60:.1f} min (<= {TARGET_SECONDS[preset] // 60}: "
                  f"{'yes' if ok_time else 'NO'}), peak RSS {total['peak_rss_mb'] / 1024:.1f} GB "
                  f"(<= {TARGET_MB[preset] // 1024}: {'yes' if ok_mem else 'NO'})")
    print(f"{os.cpu_count()} CPUs; each asset in its own process; reference: {REFERENCE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "large"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="keep the outputs here (default: a temporary folder, removed)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, data_dir, seed, index = args.child
        child(preset, Path(data_dir), int(seed), int(index))
        return
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="esmr-scale-"))
    try:
        results = {preset: run_preset(preset, args.seed, data_dir) for preset in args.presets}
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
