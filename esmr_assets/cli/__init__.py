"""`esmr`: materialize seeds and studies, and inspect their tables, from a terminal.

`esmr run` drives the same Definitions and Dagster instance as the UI, so its runs show up
there; `esmr sql` only needs DuckDB and starts without importing dagster. The subcommands are
in `commands`, what they print in `printing`; this module is the parser.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from collections.abc import Sequence

from esmr_assets.core.settings import PRESETS

from .commands import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    _cmd_numerics,
    _cmd_run,
    _cmd_sql,
    _cmd_study_run,
    _cmd_study_status,
    _cmd_sweep,
    _cmd_verify,
    _fail,
)
from .printing import format_table

__all__ = ["format_table", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (with where to read the usage)."""

    def error(self, message: str) -> typing.NoReturn:
        _fail(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)
        sys.exit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="esmr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, overrides: bool = True, runs: bool = True) -> None:
        sub.add_argument("--preset", default="paper", help=f"settings preset: {', '.join(PRESETS)} (default paper)")
        sub.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
        if runs:
            sub.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
        if overrides:
            sub.add_argument("--overrides", default="{}", help='JSON of nested setting overrides, e.g. '
                             '\'{"simulation": {"n_users": 50}}\': a scenario named after them (default: baseline)')

    run = commands.add_parser("run", help="materialize every asset for the given seeds")
    run.add_argument("--seed", action="append", required=True, help="simulation seed; repeat for several")
    common(run)
    run.set_defaults(handler=_cmd_run)

    sweep = commands.add_parser("sweep", help="materialize a range of seeds, then the cross-cell SQL models")
    sweep.add_argument("--seeds", required=True, help="seeds as ranges and items, e.g. 0-9 or 0-2,7")
    common(sweep)
    sweep.set_defaults(handler=_cmd_sweep)

    study = commands.add_parser("study", help="studies: scenario x seed grids declared in studies/<name>.toml")
    study_commands = study.add_subparsers(dest="study_command", required=True)
    for name, handler, text in (
        ("run", _cmd_study_run, "materialize every missing or stale cell, then the study's report (resumable)"),
        ("status", _cmd_study_status, "show the grid: scenario x seed, done / partial / missing / failed / interrupted / running"),
    ):
        sub = study_commands.add_parser(name, help=text)
        sub.add_argument("study", help="the study file, e.g. studies/observability.toml")
        sub.add_argument("--seeds", default=None, help="seeds as ranges, replacing the spec's (e.g. 0-9)")
        sub.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
        if name == "run":
            sub.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
        sub.set_defaults(handler=handler)

    sql = commands.add_parser("sql", help="run a read-only SQL query over the stored tables")
    sql.add_argument("query", help="one SELECT / WITH / DESCRIBE / SHOW / EXPLAIN / SUMMARIZE / VALUES statement")
    sql.add_argument("--limit", "--max-rows", dest="limit", type=int, default=100,
                     help="rows to fetch and print (default 100); only these are read from the result")
    sql.add_argument("--all", action="store_true", help="print every row, streamed in batches")
    sql.add_argument("--timeout", type=float, default=60.0, help="stop the query after this many seconds (default 60)")
    sql.add_argument("--scenario", default=None, help="show only this scenario's rows (e.g. baseline)")
    common(sql, overrides=False, runs=False)
    sql.set_defaults(handler=_cmd_sql)

    verify = commands.add_parser("verify", help="check every stored output against its key's sizes and hashes")
    verify.add_argument("--repair", action="store_true",
                        help="recompute the damaged cells (intact files are left as they are)")
    verify.add_argument("--preset", default=None, help="only this preset's folder (default: every preset)")
    verify.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
    verify.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
    verify.set_defaults(handler=_cmd_verify)

    numerics = commands.add_parser("numerics", help="the numeric environment this machine computes cells with")
    numerics.add_argument("--export", action="store_true",
                          help="print the kernel pins as shell exports (for processes started outside the project)")
    numerics.set_defaults(handler=_cmd_numerics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("esmr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`esmr sql ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0



if __name__ == "__main__":
    sys.exit(main())
