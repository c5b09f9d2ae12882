"""First answer: the start-up figures of issue 20, for this checkout and (side by side) a git revision.

    python bench/cold_start.py                          # this checkout, best of 3 fresh processes
    python bench/cold_start.py --compare HEAD~3 [--runs 3]
    python bench/cold_start.py --at HEAD --compare HEAD~3   # two commits (uncommitted edits left out)

Four figures, each the best of ``--runs`` fresh Python processes (a user's first command):

- ``first stage``: from the start of ``python -m pipeline run examples/example.mp4`` to the moment
  the pipeline starts its first stage on the clip (the probe of the decode stage);
- ``run - pipeline``: that command's wall time minus the pipeline's own time on the clip (the wall
  seconds of ``pipeline.jobs.score_one``, what the CLI logs as "(x s)"): start-up, imports and model
  loads that did not overlap the work;
- ``text 2 lines``: wall time of ``python -m pipeline text`` on a file of two lines;
- ``Models.load``: importing the pipeline and loading every model (``Models.load(PipelineConfig())``).

Also shown (best of the runs): the ``run`` command's wall time and the pipeline's own time; the own
time of a second copy of the clip scored in the same ``run`` after the first (every model loaded by
then, so nothing overlaps it: the first clip's stages share the cores with the models still loading),
and each stage's seconds on the example with every model loaded (one process: a warm-up, then the best
of 3 per stage), where "no stage slower" is judged; and each command's peak RSS (the child's ``ru_maxrss``,
MB = 10^6 bytes). A revision runs from a temporary git worktree (its packages first on
``PYTHONPATH``); runs alternate between the two sides, so both see the same machine load. Timings
on a busy machine move by tens of percent: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from storage.locations import REPO_ROOT

#: The example clip, the same file for both sides.
EXAMPLE = REPO_ROOT / "examples" / "example.mp4"
#: What ``text`` scores: two short lines, as a user trying the command would type.
TWO_LINES = "I loved this film, the acting was wonderful.\nBut the ending was terrible and a waste of time.\n"

#: ``Models.load`` of everything. Works on both sides of the restructure: ``pipeline`` re-exports these lazily.
_LOAD = "from pipeline import PipelineConfig, Models\nwith Models.load(PipelineConfig()):\n    pass\n"

#: ``python -m pipeline ARGS`` with two marks on stderr: when the first stage starts (the decode stage's
#: probe is wrapped before the pipeline imports it) and how long ``score_one`` took. ``T0`` is the
#: parent's clock just before it started the process.
_RUN = """\
import os, runpy, sys, time
import extractors.media as media
import pipeline.jobs as jobs
T0 = float(os.environ["COLD_START_T0"])
probe, score_one = media.probe, jobs.score_one
def first_probe(*args, **kwargs):
    if media.probe is first_probe:
        media.probe = probe
        sys.stderr.write(f"\\nCOLD_START first_stage_s {time.time() - T0:.4f}\\n")
    return probe(*args, **kwargs)
calls = []
def timed_score_one(*args, **kwargs):
    started = time.perf_counter()
    try:
        return score_one(*args, **kwargs)
    finally:
        name = "pipeline_s" if not calls else "later_pipeline_s"
        calls.append(name)
        sys.stderr.write(f"\\nCOLD_START {name} {time.perf_counter() - started:.4f}\\n")
media.probe, jobs.score_one = first_probe, timed_score_one
sys.argv = ["pipeline", *sys.argv[1:]]
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""

#: The stage seconds of the example with every model loaded: one warm-up, then the best of 3 per stage
#: (``VideoResult.stage_seconds``), in one process. Where "no stage slower" is judged stage by stage.
_STAGES = """\
import sys
from pipeline import Models, PipelineConfig, score_video
config = PipelineConfig()
with Models.load(config) as models:
    best = {}
    for i in range(4):
        result = score_video(sys.argv[1], config, models)
        for stage, seconds in result.stage_seconds.items():
            if i:
                best[stage] = min(best.get(stage, seconds), seconds)
for stage, seconds in best.items():
    sys.stderr.write(f"\\nCOLD_START stage_{stage}_s {seconds:.4f}\\n")
"""
#: The stages compared (both sides report them; ``models_wait`` exists only since the background load).
STAGES: tuple[str, ...] = ("decode", "asr", "voice", "face", "text", "align", "model")

_MARK = re.compile(r"^COLD_START (\w+) ([0-9.]+)$", re.MULTILINE)


def _run(args: list[str], cwd: Path, pythonpath: str | None, scratch: Path) -> dict[str, float]:
    """Wall seconds, peak RSS (MB) and the marks a fresh ``python ARGS`` wrote on stderr."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env["COLD_START_T0"] = repr(time.time())
    start = time.perf_counter()
    with open(scratch / "stdout", "wb") as out, open(scratch / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (scratch / "stderr").read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"python {' '.join(args)} (in {cwd}) exited {proc.returncode}:\n{stderr[-2000:]}")
    marks = {name: float(value) for name, value in _MARK.findall(stderr)}
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss * 1024 / 1e6, **marks}


def measure(cwd: Path, pythonpath: str | None, scratch: Path) -> dict[str, float]:
    """One fresh process per figure: the ``run`` of the example, ``text`` of two lines, ``Models.load``."""
    out = scratch / "out"
    run = _run(["-c", _RUN, "run", str(EXAMPLE), "--out", str(out), "--no-progress"], cwd, pythonpath, scratch)
    if "pipeline_s" not in run or "first_stage_s" not in run:
        raise SystemExit(f"{cwd}: the run did not report its stages (is pipeline.jobs.score_one there?)")
    text = _run(["-m", "pipeline", "text", str(scratch / "two_lines.txt")], cwd, pythonpath, scratch)
    load = _run(["-c", _LOAD], cwd, pythonpath, scratch)
    second = scratch / "media" / "example-again.mp4"  # a copy: the same file twice is one input
    if not second.is_file():
        second.parent.mkdir(exist_ok=True)
        shutil.copyfile(EXAMPLE, second)
    batch = _run(["-c", _RUN, "run", str(EXAMPLE), str(second), "--out", str(scratch / "out2"), "--no-progress"],
                 cwd, pythonpath, scratch)
    if "later_pipeline_s" not in batch:
        raise SystemExit(f"{cwd}: the batch of two did not report its second input")
    stages = _run(["-c", _STAGES, str(EXAMPLE)], cwd, pythonpath, scratch)
    return {
        **{f"stage_{stage}_s": stages[f"stage_{stage}_s"] for stage in STAGES},
        "first_stage_s": run["first_stage_s"], "run_minus_pipeline_s": run["wall_s"] - run["pipeline_s"],
        "text_s": text["wall_s"], "models_load_s": load["wall_s"],
        "run_s": run["wall_s"], "pipeline_s": run["pipeline_s"], "later_pipeline_s": batch["later_pipeline_s"],
        "run_rss_mb": run["peak_rss_mb"], "text_rss_mb": text["peak_rss_mb"], "load_rss_mb": load["peak_rss_mb"],
    }


#: (key, label, unit) of each printed row; the first four are the issue's figures.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("first_stage_s", "run example.mp4: time to the first stage", "s"),
    ("run_minus_pipeline_s", "run example.mp4: wall - pipeline's own time", "s"),
    ("text_s", "text, two lines", "s"),
    ("models_load_s", "Models.load, every part", "s"),
    ("run_s", "(run example.mp4: wall)", "s"),
    ("pipeline_s", "(run example.mp4: pipeline's own time)", "s"),
    ("later_pipeline_s", "(same clip again in that batch: own time)", "s"),
    ("run_rss_mb", "(run example.mp4: peak RSS)", "MB"),
    ("text_rss_mb", "(text: peak RSS)", "MB"),
    ("load_rss_mb", "(Models.load: peak RSS)", "MB"),
    *((f"stage_{stage}_s", f"(stage {stage}, models loaded, best of 3)", "s") for stage in STAGES),
)


def render(results: dict[str, list[dict[str, float]]]) -> str:
    """One row per figure: for each side the best (lowest) value, then every run's in brackets."""
    names = list(results)
    width = max(len(label) for _, label, _ in ROWS)
    lines = [f"{'':{width}}  " + "  ".join(f"{name:>28}" for name in names)]
    for key, label, unit in ROWS:
        cells = []
        for name in names:
            values = [r[key] for r in results[name]]
            spec = ".0f" if unit == "MB" else ".2f"
            runs = " ".join(f"{v:{spec}}" for v in values)
            cells.append(f"{min(values):{spec}} {unit} ({runs})".rjust(28))
        lines.append(f"{label:{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", default=None, metavar="REV", help="git revision to run beside this checkout")
    parser.add_argument("--at", default=None, metavar="REV",
                        help="measure this git revision instead of the working tree (whose uncommitted edits count)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per figure and side (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "two_lines.txt").write_text(TWO_LINES, encoding="utf-8")
        sides: dict[str, tuple[Path, str | None]] = {}
        trees: list[Path] = []
        try:
            for rev in (args.at, args.compare):
                if rev is None:
                    continue
                tree = scratch / f"tree{len(trees)}"
                subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), rev], cwd=REPO_ROOT, check=True)
                trees.append(tree)
                sides[rev] = (tree, str(tree))
            if args.at is None:
                sides = {"this checkout": (REPO_ROOT, None), **sides}
            results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
            for i in range(max(1, args.runs)):
                for name, (cwd, pythonpath) in sides.items():
                    print(f"run {i + 1}/{args.runs}: {name}", file=sys.stderr, flush=True)
                    results[name].append(measure(cwd, pythonpath, scratch))
        finally:
            for tree in trees:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, check=False)
    load = os.getloadavg()
    print(f"best of {args.runs} fresh processes each (load average {load[0]:.2f} {load[1]:.2f} at the end)")
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
