"""Digest every output file of a data dir, to show that a change leaves the bytes alone.

Each file's SHA-256, over data, plots, models, reuse keys and numeric records. Two things
name the code rather than the result, and are left out: the `commit` field of each
`.numerics.json`, and (inside each `.key`) the hash of that record. Timings (`.seconds`),
locks and the Dagster instance are skipped.

    python benchmarks/digest.py <data dir> before.json         # on the old commit's outputs
    python benchmarks/digest.py <data dir> after.json --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def file_digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name == ".numerics.json":
        record = json.loads(data)
        record.pop("commit", None)
        data = json.dumps(record, sort_keys=True).encode()
    elif path.name == ".key":
        key = json.loads(data)
        key.get("files", {}).pop(".numerics.json", None)
        data = json.dumps(key, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def digest(root: Path) -> dict[str, str]:
    skipped = {".dagster", ".locks"}
    return {str(path.relative_to(root)): file_digest(path) for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != ".seconds" and not skipped & set(path.parts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path, help="where to write the digests (JSON)")
    parser.add_argument("--compare", type=Path, help="an earlier digest to compare with")
    args = parser.parse_args()
    files = digest(args.data_dir)
    args.out.write_text(json.dumps(files, indent=1, sort_keys=True))
    overall = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    print(f"{len(files)} files; digest {overall}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    missing, added = sorted(set(before) - set(files)), sorted(set(files) - set(before))
    changed = sorted(name for name in set(before) & set(files) if before[name] != files[name])
    for title, names in (("only before", missing), ("only after", added), ("changed", changed)):
        for name in names:
            print(f"{title}: {name}")
    print(f"{len(set(before) & set(files)) - len(changed)} of {len(before)} files identical; "
          f"{len(changed)} changed, {len(missing)} gone, {len(added)} new")
    return 1 if missing or added or changed else 0


if __name__ == "__main__":
    sys.exit(main())
