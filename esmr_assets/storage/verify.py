"""Checking a data dir against what its keys vouch for (`esmr verify`).

Every key file records the size and SHA-256 of each file it vouches for (`reuse.manifest`),
in a cell and in the reuse store alike. `scan` reads them all back and lists what no longer
matches: a truncated or rewritten file, a missing one, a key written before keys recorded
hashes. `esmr verify --repair` then sets the damaged shared copies aside and recomputes the
damaged cells; the planner leaves every intact step as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.settings import SettingsError, parse_seed
from . import reuse
from .cells import Cell, check_scenario_name


@dataclass(frozen=True)
class Damage:
    preset: str
    asset: str  # the asset key path, "/"-joined
    cell: Cell | None  # None: a shared output of the reuse store
    key: str | None  # the shared output's key
    problems: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.cell}" if self.cell is not None else f"shared output {self.key}"
        return f"{self.preset}/{self.asset}, {where}: {'; '.join(self.problems)}"


@dataclass
class Report:
    checked: int  # key files read
    damaged: list[Damage]


def preset_roots(data_dir: Path, preset: str | None = None) -> list[Path]:
    """The preset folders of a data dir (those holding key files), or the one named."""
    data_dir = Path(data_dir)
    if preset is not None:
        return [data_dir / preset]
    return sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) if data_dir.is_dir() else []


def _cell_of(parts: tuple[str, ...]) -> tuple[str, Cell] | None:
    """(asset path, cell) of `<asset...>/scenario=<s>/seed=<k>`, None for other folders."""
    if len(parts) < 3 or not parts[-2].startswith("scenario=") or not parts[-1].startswith("seed="):
        return None
    try:
        cell = Cell(check_scenario_name(parts[-2].partition("=")[2]), parse_seed(parts[-1].partition("=")[2]))
    except SettingsError:
        return None
    return "/".join(parts[:-2]), cell


def scan(data_dir: Path, preset: str | None = None) -> Report:
    """Every key file under the data dir (or one preset of it), checked against its files,
    and every shared output without one."""
    checked, damaged = 0, []
    for root in preset_roots(data_dir, preset):
        shared = root / reuse.SHARED_DIR
        for folder in sorted(shared.rglob("*")) if shared.is_dir() else []:
            if (folder.is_dir() and not folder.name.startswith(".") and not (folder / reuse.KEY_FILE).exists()
                    and any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir())):
                checked += 1
                damaged.append(Damage(root.name, "/".join(folder.relative_to(shared).parts[:-1]), None, folder.name,
                                      (f"it has no key file {reuse.KEY_FILE}",)))
        for key_file in sorted(root.rglob(reuse.KEY_FILE)):
            folder = key_file.parent
            parts = folder.relative_to(root).parts
            if any(p.startswith(".") for p in parts):
                continue  # in-flight or set-aside folders
            key, files = reuse.read_key_file(folder)
            if parts[0] == reuse.SHARED_DIR:
                checked += 1
                problems = reuse.damage(folder, files)
                if key != parts[-1]:
                    problems.insert(0, f"its key file names {key!r}, not the folder's {parts[-1]!r}")
                if problems:
                    damaged.append(Damage(root.name, "/".join(parts[1:-1]), None, parts[-1], tuple(problems)))
                continue
            found = _cell_of(parts)
            if found is None:
                continue
            checked += 1
            problems = reuse.damage(folder, files)
            if problems:
                damaged.append(Damage(root.name, found[0], found[1], None, tuple(problems)))
    return Report(checked, damaged)


def set_aside_damaged_shared(data_dir: Path, report: Report) -> int:
    """Remove the damaged shared outputs (they are never linked again); their count."""
    removed = 0
    for damage in report.damaged:
        if damage.cell is None:
            folder = Path(data_dir) / damage.preset / reuse.SHARED_DIR / damage.asset / damage.key
            if folder.is_dir():
                reuse.set_aside(folder)
                removed += 1
    return removed


def damaged_cells(report: Report) -> dict[str, list[Cell]]:
    """Per preset, the cells with at least one damaged step, in order."""
    cells: dict[str, set[Cell]] = {}
    for damage in report.damaged:
        if damage.cell is not None:
            cells.setdefault(damage.preset, set()).add(damage.cell)
    return {preset: sorted(found) for preset, found in sorted(cells.items())}
