"""Reuse of what a scenario does not change: content keys, a shared store, and adoption.

A step's key is a hash of what its output depends on: the step, the settings its assets
declare they read (`resources.reads`), the seed, and the keys of the steps it reads from.
Two cells whose keys agree would compute identical bytes, so the second links the first's
files instead of recomputing them:

    <root>/<asset>/scenario=<s>/seed=<k>/...      the cell's files, and `.key` (its step key)
    <root>/_shared/<asset>/<key>/...              hard links to the files of the first cell
                                                  that computed that key

`.key` is written last, so a cell holds a key only when every file of it is complete; a
shared folder appears whole by one rename. Beside it, `.numerics.json` records what the files
were computed with (`numeric_env.record()`: the package's version and commit, the machine, the
numeric packages and their kernels); the environment's fingerprint is part of every key, so a
cell computed with other kernels or versions is recomputed, never linked. Files are hard
links (same inode), so a cell rewritten later by another scenario definition replaces its own directory entry and leaves the
shared copy alone. Keys cover settings, data and each asset's Dagster `code_version` (set
it, or bump it, when what the asset computes changes), not the code itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core import numeric_env
from ..core.settings import Settings
from .cells import Cell
from .files import atomic_write_bytes, partition_dir, pid_alive

KEY_FILE = ".key"
SECONDS_FILE = ".seconds"  # in a shared folder: how long computing it took
SHARED_DIR = "_shared"
RECORD_FILE = ".numerics.json"  # beside a cell's (and a shared output's) files: `numeric_env.record()`
#: bump when stored outputs change meaning without any setting changing, to retire every key
KEY_VERSION = 1


def declared_values(settings: Settings, paths: Sequence[str]) -> dict:
    """The values of the declared settings ("section" or "section.field") that differ from
    the settings' own defaults, as JSON-able data. Leaving the defaults out loses nothing (the
    key still tells every effective value apart) and keeps keys when a setting is added with a
    default that changes nothing, as the scenario names do. Changing a default is a change of
    code: bump KEY_VERSION."""
    dumped, defaults = settings.model_dump(mode="json"), _defaults()
    values: dict = {}
    for path in sorted(set(paths)):
        section, _, field = path.partition(".")
        if field:
            if dumped[section][field] != defaults[section][field]:
                values[path] = dumped[section][field]
        else:
            values[path] = {k: v for k, v in dumped[section].items() if v != defaults[section][k]}
    return values


@functools.cache
def _defaults() -> dict:
    return Settings.model_validate({"preset": "paper"}).model_dump(mode="json")


def step_key(op_name: str, values: Mapping, seed: int, upstream: Mapping[str, str],
             code_version: str | None = None) -> str:
    """The content key of one step in one cell; an asset's Dagster `code_version`, when set,
    is part of it (bump it when what the asset computes changes: it and every step after
    it get new keys)."""
    payload = {"version": KEY_VERSION, "op": op_name, "settings": values, "seed": seed,
               "upstream": dict(sorted(upstream.items())), "numerics": numeric_env.fingerprint()}
    if code_version is not None:  # absent otherwise, so unversioned assets keep their keys
        payload["code_version"] = code_version
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _cell_dir(root: Path, asset_path: Sequence[str], cell: Cell) -> Path:
    return partition_dir(Path(root).joinpath(*asset_path[:-1]), asset_path[-1], cell)


def shared_dir(root: Path, asset_path: Sequence[str], key: str) -> Path:
    return Path(root, SHARED_DIR, *asset_path, key)


def _data_files(folder: Path) -> list[Path]:
    """The files of a partition: everything but hidden files (the key, in-flight temps)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


class NumericEnvironmentMismatch(RuntimeError):
    """A cell's files were computed in another numeric environment than the one its key was
    planned in (a Dask worker without the pinned kernels, say): they are not shared."""


def write_record(folder: Path) -> dict:
    """Record beside a cell's files what this process computes with (every writer of a
    cell's files calls it after writing them); returns the record."""
    record = numeric_env.record()
    atomic_write_bytes(Path(folder) / RECORD_FILE, json.dumps(record, sort_keys=True, indent=1).encode())
    return record


def read_record(folder: Path) -> dict | None:
    path = Path(folder) / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _carried(folder: Path) -> list[Path]:
    """What a shared output holds and a linked cell receives: the files and their record."""
    record = Path(folder) / RECORD_FILE
    return _data_files(folder) + ([record] if record.is_file() else [])


def _check_record(folder: Path, asset_path: Sequence[str], cell: Cell) -> None:
    """The cell's files were computed in this process's numeric environment, as recorded
    beside them by whatever wrote them (every writer records)."""
    record = read_record(folder)
    if record is None:
        raise NumericEnvironmentMismatch(
            f"{'/'.join(asset_path)} of {cell} has no record of the environment it was computed in "
            f"({folder / RECORD_FILE} is missing); not shared")
    if record.get("fingerprint") != numeric_env.fingerprint():
        mine = numeric_env.environment()
        differs = sorted(k for k in mine if record.get(k) != mine[k])
        raise NumericEnvironmentMismatch(
            f"{'/'.join(asset_path)} of {cell} was computed in another numeric environment than this process's "
            f"(it differs in {', '.join(differs) or 'its fingerprint'}: {folder / RECORD_FILE}); not shared. Run "
            f"every process of a run with the pinned kernels ({' '.join(f'{k}={v}' for k, v in numeric_env.PINS.items())})")


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(folder: Path) -> dict[str, list]:
    """What a key vouches for: each file of the cell (its record included) -> [size, SHA-256]."""
    return {p.name: [p.stat().st_size, _digest(p)] for p in _carried(folder)}


def _key_text(key: str, files: Mapping[str, list]) -> bytes:
    return json.dumps({"key": key, "files": dict(sorted(files.items()))}, indent=1).encode()


#: what a key file that cannot be read vouches for: nothing (`damage` says why)
UNREADABLE = "unreadable"


def _valid_manifest(files: Any) -> bool:
    """A manifest maps plain file names of the folder to [size, SHA-256 hex]."""
    return isinstance(files, dict) and all(
        isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name
        and isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and not isinstance(entry[0], bool)
        and isinstance(entry[1], str) and len(entry[1]) == 64
        for name, entry in files.items())


def read_key_file(folder: Path) -> tuple[str | None, dict | str | None]:
    """(key, manifest) of a cell's or a shared output's key file; (None, None) without one.
    A key file written before keys vouched for their files holds the key alone (no manifest);
    one that is damaged itself reads as (its key or None, `UNREADABLE`)."""
    path = Path(folder) / KEY_FILE
    if not path.is_file():
        return None, None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None, UNREADABLE
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict):  # a key alone (written before keys vouched), or noise
        return (text.strip(), None) if re.fullmatch(r"[0-9a-f]{20}", text.strip()) else (None, UNREADABLE)
    if not isinstance(data.get("key"), str):
        return None, UNREADABLE
    files = data.get("files")
    return data["key"], files if _valid_manifest(files) else UNREADABLE


def damage(folder: Path, files: Mapping[str, list] | str | None) -> list[str]:
    """What no longer matches the manifest `files` in `folder` (empty: intact); a missing or
    unreadable manifest is damage too, since nothing vouches for the files."""
    if files is None:
        return ["no record of its files' sizes and hashes (a key written by an older version)"]
    if files == UNREADABLE:
        return [f"its key file {KEY_FILE} is damaged itself"]
    found = []
    for name, (size, digest) in sorted(files.items()):
        path = Path(folder) / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif path.stat().st_size != size:
            found.append(f"{name} has {path.stat().st_size} bytes, {size} recorded")
        elif _digest(path) != digest:
            found.append(f"{name} has other content than recorded (same size, another SHA-256)")
    return found


def stored_key(root: Path, asset_path: Sequence[str], cell: Cell) -> str | None:
    return read_key_file(_cell_dir(root, asset_path, cell))[0]


def cell_damage(root: Path, asset_path: Sequence[str], cell: Cell) -> list[str]:
    """What is wrong with a cell that holds a key (empty when intact, or when it holds none)."""
    folder = _cell_dir(root, asset_path, cell)
    key, files = read_key_file(folder)
    return [] if key is None and files is None else damage(folder, files)


def is_current(root: Path, asset_path: Sequence[str], cell: Cell, key: str) -> bool:
    """The cell holds this asset's output for `key`, complete and as it was written: every
    file the key vouches for has its recorded size and hash."""
    folder = _cell_dir(root, asset_path, cell)
    stored, files = read_key_file(folder)
    return stored == key and bool(_data_files(folder)) and not damage(folder, files)


def shared_damage(root: Path, asset_path: Sequence[str], key: str) -> list[str]:
    folder = shared_dir(root, asset_path, key)
    stored, files = read_key_file(folder)
    if stored is None and files is None:
        return [f"it has no key file {KEY_FILE}"]
    if stored != key and files != UNREADABLE:
        return [f"its key file names {stored!r}, not {key!r}"]
    return damage(folder, files)


def is_shared(root: Path, asset_path: Sequence[str], key: str) -> bool:
    """A shared output of `key` exists and is intact (a damaged one is never linked)."""
    return shared_dir(root, asset_path, key).is_dir() and not shared_damage(root, asset_path, key)


def _link(source: Path, target: Path) -> None:
    """Atomically make `target` the same file as `source` (a hard link; a copy across
    devices). Already the same file: nothing to do (a rename between two links of one file
    does nothing and would leave the temp link behind)."""
    if target.exists() and os.path.samefile(source, target):
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename, unless it failed or was a no-op


class SharedCopyDamaged(RuntimeError):
    """The shared output changed (was damaged, or set aside) while a cell linked it."""


def link_shared(root: Path, asset_path: Sequence[str], cell: Cell, key: str) -> list[Path]:
    """Give `cell` the files of the shared output of `key` (dropping files it does not have),
    and record that it holds `key`: only if the linked files are still what the shared
    copy's key vouches for (`SharedCopyDamaged` otherwise, the cell left without a key).
    Returns the cell's files."""
    source, target = shared_dir(root, asset_path, key), _cell_dir(root, asset_path, cell)
    target.mkdir(parents=True, exist_ok=True)
    invalidate(target)  # the cell is not `key` until every file is in
    stored, vouched = read_key_file(source)
    files = _carried(source)
    try:
        for path in files:
            _link(path, target / path.name)
    except OSError as err:  # nothing half linked stays: the cell is left without these files
        for path in files:
            (target / path.name).unlink(missing_ok=True)
        if isinstance(err, FileNotFoundError):  # set aside by another process meanwhile
            raise SharedCopyDamaged(f"the shared output {source} went away while it was linked ({err})") from None
        raise
    for extra in set(p.name for p in _carried(target)) - {p.name for p in files}:
        (target / extra).unlink()
    problems = damage(target, vouched) if stored == key else [f"its key file names {stored!r}"]
    if problems:
        raise SharedCopyDamaged(f"the shared output {source} is damaged: {'; '.join(problems)}")
    atomic_write_bytes(target / KEY_FILE, _key_text(key, vouched))
    return [target / p.name for p in files if p.name != RECORD_FILE]


def invalidate(cell_dir: Path) -> None:
    """The cell's files are about to change: it holds no key until it is recorded again.
    Every writer of a cell's files calls this first (the IO managers, the plots)."""
    (Path(cell_dir) / KEY_FILE).unlink(missing_ok=True)


def _read_only(paths: Iterable[Path]) -> None:
    """Shared files are read-only: the project only ever replaces a file (temp, then rename),
    so a write in place is another program's, and this refuses it (for users other than root;
    the hashes catch what gets through)."""
    for path in paths:
        os.chmod(path, 0o444)


def set_aside(folder: Path, seen: int | None = None) -> None:
    """Remove a damaged shared output (renamed first, so no reader sees it half deleted).
    `seen`: the folder's inode when it was found damaged; a folder another writer has put in
    its place since (a good copy) is left alone."""
    try:
        if seen is not None and folder.stat().st_ino != seen:
            return
        aside = folder.with_name(f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}.damaged.tmp")
        os.rename(folder, aside)
    except FileNotFoundError:  # another writer set it aside first
        return
    shutil.rmtree(aside, ignore_errors=True)


def remove_stale(root: Path, dry_run: bool = False) -> list[Path]:
    """Temp files and folders of the reuse store and the cells left by processes that were
    killed (`.<name>.<pid>.<hex>[.damaged].tmp`, the pid no longer running); what was removed
    (or, with `dry_run`, would be)."""
    removed = []
    for tmp in sorted(Path(root).rglob(".*.tmp")):
        parts = tmp.name.split(".")
        pids = [p for p in parts[2:-1] if p.isdigit()]
        if pids and int(pids[0]) != os.getpid() and not pid_alive(int(pids[0])):
            if not dry_run:
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def publish(root: Path, asset_path: Sequence[str], cell: Cell, key: str, seconds: float | None = None) -> None:
    """Record that `cell` computed `key` (in `seconds`): share its files (if nobody has yet,
    or in place of a damaged shared copy), then write its key."""
    source = _cell_dir(root, asset_path, cell)
    _check_record(source, asset_path, cell)
    files = manifest(source)
    _read_only(_carried(source))
    shared = shared_dir(root, asset_path, key)
    if shared.is_dir() and shared_damage(root, asset_path, key):
        set_aside(shared, seen=shared.stat().st_ino)
    if not shared.is_dir():
        shared.parent.mkdir(parents=True, exist_ok=True)
        tmp = shared.with_name(f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.mkdir()
        try:
            for path in _carried(source):
                _link(path, tmp / path.name)
            if seconds is not None:
                (tmp / SECONDS_FILE).write_text(f"{seconds:.3f}")
            (tmp / KEY_FILE).write_bytes(_key_text(key, files))
            os.rename(tmp, shared)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not shared.is_dir():  # not another writer having won the race
                raise
    atomic_write_bytes(source / KEY_FILE, _key_text(key, files))


def shared_seconds(root: Path, asset_path: Sequence[str], key: str) -> float:
    """How long the shared output took to compute (0 when not recorded)."""
    path = shared_dir(root, asset_path, key) / SECONDS_FILE
    return float(path.read_text()) if path.is_file() else 0.0


def forget(root: Path, asset_paths: Iterable[Sequence[str]], cell: Cell) -> None:
    """Before recomputing these assets in the cell: drop their keys and their files (stale:
    another definition's, or an interrupted write's), so that what is shared afterwards is
    exactly what this computation wrote."""
    for asset_path in asset_paths:
        folder = _cell_dir(root, asset_path, cell)
        invalidate(folder)
        for path in _carried(folder):
            path.unlink()
