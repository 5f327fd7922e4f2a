"""Where a run's files live on disk, and how they get there atomically.

Pure (no dagster import) so the CLI's `esmr sql` starts fast and domain or asset code can
store model files beside its tables with the same guarantees as the IO manager.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from esmr_assets.core.settings import SettingsError

DATA_DIR_ENV = "ESMR_DATA_DIR"
DEFAULT_DATA_DIR = "data"
PART_FILE = "part-0.parquet"


def resolve_data_dir(data_dir: str = "") -> Path:
    """The explicit `data_dir`, else $ESMR_DATA_DIR, else ./data; made absolute so that
    paths recorded in run metadata do not depend on the working directory of a reader."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV, "") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().absolute()


def storage_root(data_dir: Path, preset: str) -> Path:
    """`<data_dir>/<preset>`: every scenario and seed of one preset, as cells below each asset."""
    return Path(data_dir) / preset


def config_root(esmr_config: Mapping[str, Any]) -> Path:
    """The preset root a run's `esmr` resource config names (its data dir and preset, each
    defaulting as `EsmrConfig` does): where a sensor finds what that run wrote."""
    return storage_root(resolve_data_dir(esmr_config.get("data_dir", "")), esmr_config.get("preset", "paper"))


def check_writable_dir(path: Path, what: str = "data dir") -> None:
    """Refuse `path` as a folder to write into, creating nothing: it, or the nearest folder
    above it that exists, must be a writable folder."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise SettingsError(f"{what} {path} is not writable: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SettingsError(f"{what} {path} is not writable: {existing} refuses writes")


def ensure_writable_dir(path: Path, what: str = "data dir") -> None:
    """Create `path` and prove it writable with a probe file, so that a bad data dir fails
    before any computation rather than after the first expensive asset."""
    check_writable_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".esmr-write-probe.{os.getpid()}.{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise SettingsError(f"{what} {path} is not writable: {reason}") from None


def partition_dir(root: Path, asset: str, cell) -> Path:
    """Hive-style folder of one asset partition (a `cells.Cell`):
    `<root>/<asset>/scenario=<name>/seed=<k>`."""
    return Path(root) / asset / f"scenario={cell.scenario}" / f"seed={cell.seed}"


def _temp_path_for(path: Path) -> Path:
    # Hidden, and never named like a final file, so readers that glob for PART_FILE
    # (DuckDB views, the IO manager) cannot see a half-written file.
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid lives on this machine (any owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temp files of `path` left by writers that no longer run (a killed process
    cannot clean up after itself); returns what was removed."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid_text = tmp.name.removeprefix(f".{path.name}.").split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write_with(path: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temp file beside `path`, fsync it, then rename it over `path`.

    Readers see either the previous file or the complete new one. On any exception the
    temp file is removed and the previous file is left untouched; temp files of killed
    writers are removed by the next write of the same file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = _temp_path_for(path)
    try:
        # O_EXCL: never clobber another writer's temp file; mode 0o666 lets the umask decide.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        writer(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_parquet(path: Path, frame: pl.DataFrame) -> None:
    """Atomically replace `path` with `frame` as zstd Parquet. polars writes no timestamps,
    so the same frame always gives the same bytes."""
    atomic_write_with(path, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data` (e.g. a LightGBM model string)."""
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself, not only the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
