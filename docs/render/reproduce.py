"""Recompute archived cells from scratch and check their bytes equal the archive's.

Each CELL is `<study>.<scenario>:<seed>`. The cell is computed with `esmr run` under the
scenario's overrides in a data dir of its own (no reuse from anything computed before), and
every table the archive keeps of it (`ARCHIVED_TABLES`) is compared byte for byte with
studies/cells/. A cell's bytes do not depend on the scenario's name, only on its settings and
seed, so the run's scenario (named after the overrides) holds the same files.

    .venv/bin/python docs/render/reproduce.py --data-dir /tmp/reproduce fair_test.paper:0 observability.signal_0:3

It prints one line per table and exits 1 when any differs. The archive's cells record the
numeric environment they were computed in (`.numerics.json`); on a machine whose kernels
differ, `esmr numerics` says so, and docs/portable_bytes.md says what still holds.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the renderers' own helpers, run as scripts or loaded by path
from sources import CELLS, REPO  # noqa: E402
from studies import ARCHIVED_TABLES  # noqa: E402

from esmr_assets.storage.cells import overrides_scenario_name  # noqa: E402
from esmr_assets.studies.spec import load_study  # noqa: E402

ESMR = Path(sys.executable).with_name("esmr")


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def reproduce(cell: str, data_dir: Path, cells: Path = CELLS) -> list[tuple[str, str | None, str | None]]:
    """Compute `cell` in `data_dir`; per archived table, (table, archive's digest, computed digest)."""
    name, _, seed = cell.rpartition(":")
    study_name, _, scenario_name = name.partition(".")
    study = load_study(REPO / "studies" / f"{study_name}.toml")
    scenario = study.scenario(scenario_name)
    data_dir = data_dir / cell.replace(":", "-")  # a folder of its own: nothing reused from another cell
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: the cell must be computed from scratch")
    subprocess.run([str(ESMR), "run", "--seed", seed, "--preset", study.preset, "--overrides",
                    scenario.overrides_json, "--data-dir", str(data_dir)], check=True)
    computed = data_dir / study.preset
    run_scenario = overrides_scenario_name(study.preset, scenario.overrides_json)
    rows = []
    for table in ARCHIVED_TABLES:
        archived = cells / study.preset / table / f"scenario={study.cell_scenario(scenario)}" / f"seed={seed}"
        if (archived / "part-0.parquet").is_file():
            mine = computed / table / f"scenario={run_scenario}" / f"seed={seed}"
            rows.append((table, _digest(archived / "part-0.parquet"), _digest(mine / "part-0.parquet")))
    if not rows:
        raise SystemExit(f"{cell}: not in the archive ({cells})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="+", metavar="CELL", help="<study>.<scenario>:<seed>, e.g. fair_test.paper:0")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="where to compute them, each in an empty folder of its own")
    args = parser.parse_args()
    differ = 0
    for cell in args.cells:
        for table, archived, computed in reproduce(cell, args.data_dir):
            same = archived == computed
            differ += not same
            print(f"{cell:40} {table:22} archive {archived}  computed {computed}  {'same' if same else 'DIFFERS'}")
    print("every table equals the archive's" if not differ else f"{differ} tables differ from the archive")
    raise SystemExit(1 if differ else 0)


if __name__ == "__main__":
    main()
