"""Cold start (imports + ``Models.load``) of this checkout against a git revision, interleaved.

    python bench/cold_start.py --compare 1e8e18c [--runs 3]

Each run is a fresh Python process that imports the pipeline and loads every model, as a
user's first command does; the revision runs from a temporary git worktree (its packages
first on ``PYTHONPATH``). Runs alternate, so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storage.locations import REPO_ROOT

#: Works on both sides of the restructure: ``pipeline`` re-exports these lazily in both.
_LOAD = "from pipeline import PipelineConfig, Models\nwith Models.load(PipelineConfig()):\n    pass\n"


def _time_load(cwd: Path, pythonpath: str | None) -> float:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LOAD], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", required=True, metavar="REV", help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), args.compare], cwd=REPO_ROOT,
                       check=True)
        try:
            times: dict[str, list[float]] = {"this checkout": [], args.compare: []}
            for _ in range(max(1, args.runs)):
                times["this checkout"].append(_time_load(Path(tmp), None))
                times[args.compare].append(_time_load(tree, str(tree)))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, check=False)
    for name, values in times.items():
        print(f"cold start ({name}): " + " ".join(f"{v:.2f}" for v in values) + f" s  (best {min(values):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
