"""`make demo`: the main job on the offline default, stage by stage, into one workspace.

Run it with ``python -m narbuild.demo [--workdir DIR]``. Each stage that exists runs on the
offline registries; the summary says where every table is.
"""

from __future__ import annotations

import argparse
import sys

from narbuild.cli import main as cli_main


def _run(workdir: str, *args: str) -> None:
    print(f"\n$ narbuild --workdir {workdir} {' '.join(args)}", flush=True)
    try:
        cli_main(["--workdir", workdir, *args])
    except SystemExit as exc:
        if exc.code:
            raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default="narbuild-data")
    args = parser.parse_args(argv)
    _run(args.workdir, "crawl")
    print(f"\nDone. Every table is under {args.workdir}/ (Parquet); try "
          f"`narbuild --workdir {args.workdir} --help`.")


if __name__ == "__main__":
    sys.exit(main())
