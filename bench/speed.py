"""Speed and memory of the real pipeline: a benchmark anyone can re-run.

    python bench/speed.py                     # everything, 10-minute video included (~10 min on 2 cores)
    python bench/speed.py --quick             # skip the 10-minute video
    python bench/speed.py --json bench/results.json --weights weights/miar-v7
    python bench/speed.py --start-only        # only the start-up time of ``python -m pipeline --help``

Each input set runs in a fresh Python process, so that cold start (imports +
``Models.load``) is measured as a user meets it and peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that input alone. Inputs:

- ``examples/example.mp4`` (16.4 s, three utterances);
- the 10 GRID clips of ``$MIAR_SHARED/data/clips/grid`` as one batch, models loaded once;
- ``$MIAR_SHARED/data/clips/pyfeat/WolfgangLanger_Pexels.mp4`` (19.7 s, silent audio: the
  pipeline stops after ASR with status "no_speech");
- 1-minute and 10-minute videos built here by concatenating the example clip (ffmpeg stream
  copy, cached in ``$MIAR_CACHE/bench`` and reused). For these the same process then measures
  the limits: ffmpeg decoding alone (audio, and frames as the face stage samples them) and ASR
  alone (``Transcriber.transcribe`` on the same decoded audio).

Before the cases, ``python -m pipeline --help`` runs three times in fresh processes: the best
wall time is the light start a user meets before any model library is imported (target
<= 0.5 s), printed beside the cold start with the heavy modules that ``--help`` imported.

Timings are wall seconds (``time.perf_counter``) of the stages ``score_video`` reports, plus
``output`` (``write_video_csv``) and ``other`` (what is left of the video's wall time). The
real-time factor (RTF) is seconds of work per second of media. The table goes to stdout,
progress notes to stderr, and ``--json`` writes the same numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.files import atomic_path, sha256_of, write_text_atomic
from storage.locations import REPO_ROOT, cache_dir, shared_data_dir

log = logging.getLogger("bench.speed")

#: Stages in the order the pipeline runs them (``VideoResult.stage_seconds`` keys, then ours).
#: ``face`` runs on a worker thread beside ``asr`` (its seconds overlap them; shares can sum
#: past 100%); ``face_wait`` is what the main thread then waited for it; ``models_wait`` what
#: the stages waited for models still loading (0 here: this bench loads every model first, so its
#: cold start stays one figure).
STAGES: tuple[str, ...] = ("decode", "asr", "voice", "face", "face_wait", "models_wait", "text", "align", "model",
                           "output")
#: The example clip every long video is built from.
EXAMPLE_CLIP = REPO_ROOT / "examples" / "example.mp4"
#: Lengths of the built long videos, seconds.
LONG_VIDEOS_S: dict[str, float] = {"long-1min": 60.0, "long-10min": 600.0}
#: A worker running longer than this is stopped and reported as failed.
WORKER_TIMEOUT_S = 3600.0
#: ``python -m pipeline --help`` runs this many times; the best counts (the others show the noise).
HELP_RUNS = 3
#: Libraries ``--help`` must not import (each costs from tenths of a second to seconds).
HEAVY_MODULES: tuple[str, ...] = ("torch", "transformers", "faster_whisper", "ctranslate2", "mediapipe", "cv2",
                                  "facenet_pytorch", "librosa", "parselmouth", "sklearn", "matplotlib", "numpy")
#: KiB (Linux's ru_maxrss unit) to MB (10^6 bytes), the unit of the memory target.
KIB_TO_MB = 1024 / 1e6


@dataclass(frozen=True)
class Targets:
    """The speed and memory goals the run is judged against (issue "Speed and memory").

    Attributes:
        long_rtf: Real-time factor of the 10-minute video (0.25 = 150 s for 10 min).
        asr_overhead_ratio: Whole pipeline / ASR alone on the 10-minute video: everything
            besides Whisper may cost at most 60% on top of it.
        peak_rss_mb: Peak resident memory of any one run.
        rss_growth: Allowed relative peak-RSS growth from the 1-minute to the 10-minute
            video: memory must not scale with video length (frames are streamed).
        grid_s_per_clip: Mean seconds per 3-s GRID clip in a batch, after start-up.
        cold_start_s: Imports + ``Models.load`` in a fresh process.
        help_s: ``python -m pipeline --help`` in a fresh process, best of ``HELP_RUNS`` (a quiet machine).
    """

    long_rtf: float = 0.25
    asr_overhead_ratio: float = 1.6
    peak_rss_mb: float = 3000.0
    rss_growth: float = 0.15
    grid_s_per_clip: float = 3.0
    cold_start_s: float = 15.0
    help_s: float = 0.5


@dataclass(frozen=True)
class Case:
    """One input set, run in its own process.

    Attributes:
        name: Short label used in the table and JSON.
        inputs: Media files, scored in order with the models loaded once.
        measure_limits: Also time ffmpeg decoding alone and ASR alone on the first input.
        note: Printed under the case's table.
    """

    name: str
    inputs: tuple[Path, ...]
    measure_limits: bool = False
    note: str = ""


# --------------------------------------------------------------------------- worker side


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss * KIB_TO_MB


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (ffmpeg): unlike wall time,
    barely changed when other processes compete for the cores."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_worker(spec_path: Path) -> None:
    """Score a case's inputs in this (fresh) process and write the measurements as JSON.

    The spec is written by the parent: ``name``, ``inputs``, ``measure_limits``,
    ``weights`` (or None) and ``result`` (where the JSON goes).
    """
    spec = json.loads(spec_path.read_text())
    start = time.perf_counter()
    from pipeline import Models, PipelineConfig, score_video  # imported here: part of the cold start
    from pipeline.output import write_video_csv

    imported = time.perf_counter()
    config = PipelineConfig()
    if spec["weights"]:
        config = config.with_overrides(weights_dir=Path(spec["weights"]))
    models = Models.load(config)
    loaded = time.perf_counter()
    out: dict[str, Any] = {
        "name": spec["name"],
        "loadavg_before": list(os.getloadavg()),
        "cold_start": {"imports_s": imported - start, "models_load_s": loaded - imported, "total_s": loaded - start},
        "rss_after_load_mb": _peak_rss_mb(resource.RUSAGE_SELF),
        "videos": [],
    }
    try:
        with tempfile.TemporaryDirectory(prefix="miar-bench-") as tmp:
            for path in map(Path, spec["inputs"]):
                log.info("%s: scoring %s", spec["name"], path.name)
                began, cpu_began = time.perf_counter(), _cpu_s()
                result = score_video(path, config, models)
                scored = time.perf_counter()
                write_video_csv(result, Path(tmp) / f"{path.stem}.csv", config.output)
                written, cpu_s = time.perf_counter(), _cpu_s() - cpu_began
                stage_s = dict(result.stage_seconds)
                stage_s["output"] = written - scored
                out["videos"].append({
                    "path": str(path), "media_s": result.media.duration_s, "status": result.status,
                    "utterances": len(result.utterances), "wall_s": written - began, "cpu_s": cpu_s, "stage_s": stage_s,
                    "face_coverage": result.face_coverage, "warnings": list(result.warnings),
                })
            out["peak_rss_mb"] = _peak_rss_mb(resource.RUSAGE_SELF)
            if spec["measure_limits"]:
                out["limits"] = _measure_limits(Path(spec["inputs"][0]), config, models)
    finally:
        models.close()
    out["loadavg_after"] = list(os.getloadavg())
    Path(spec["result"]).write_text(json.dumps(out, indent=1))  # a scratch file the parent reads once


def _measure_limits(path: Path, config: Any, models: Any) -> dict[str, float]:
    """What the pipeline cannot beat: ffmpeg decoding alone and Whisper alone on the same audio."""
    from extractors.media import decode_audio, iter_frames, probe

    log.info("limits: decoding %s alone", path.name)
    loadavg_before = list(os.getloadavg())
    began = time.perf_counter()
    media = probe(path, models.ffmpeg)
    audio = decode_audio(path, models.ffmpeg, config.media.sample_rate_hz)
    audio_s = time.perf_counter() - began
    began = time.perf_counter()
    n_frames = sum(1 for _ in iter_frames(media, models.ffmpeg, config.media.frame_fps, config.media.max_side_px))
    frames_s = time.perf_counter() - began
    log.info("limits: ASR alone on %.0f s of audio", len(audio) / config.media.sample_rate_hz)
    began, cpu_began = time.perf_counter(), _cpu_s()
    models.transcriber.transcribe(audio)
    asr_s, asr_cpu_s = time.perf_counter() - began, _cpu_s() - cpu_began
    return {"decode_audio_alone_s": audio_s, "decode_frames_alone_s": frames_s, "frames": n_frames,
            "asr_alone_s": asr_s, "asr_alone_cpu_s": asr_cpu_s, "loadavg_before": loadavg_before}


# --------------------------------------------------------------------------- parent side


def machine_info() -> dict[str, Any]:
    """Enough about the machine to compare two runs: CPU, cores, memory, load, versions, date."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_gb = int(line.split()[1]) * 1024 / 1e9
                break
    except OSError:
        pass
    cores_usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu_model": cpu_model, "cores": os.cpu_count(), "cores_usable": cores_usable,
        "mem_total_gb": mem_total_gb, "loadavg": list(os.getloadavg()),
    }


def measure_help(runs: int = HELP_RUNS) -> dict[str, Any]:
    """Wall seconds of ``python -m pipeline --help`` in fresh interpreters, and what it imported.

    Returns:
        ``runs_s`` (each run), ``best_s``, ``heavy_imported`` (the ``HEAVY_MODULES`` that
        ``--help`` loaded, from one more run that lists ``sys.modules``), ``loadavg_before``,
        or ``error`` when ``--help`` did not exit 0.
    """
    loadavg_before = list(os.getloadavg())
    runs_s: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=False)
        runs_s.append(time.perf_counter() - began)
        if done.returncode != 0:
            return {"error": f"python -m pipeline --help exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    probe_code = ("import sys\nfrom pipeline.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
                  f"    pass\nprint('heavy:', *(m for m in {HEAVY_MODULES!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe_code], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=False)
    found = [line.split()[1:] for line in done.stderr.splitlines() if line.startswith("heavy:")]
    heavy = found[-1] if done.returncode == 0 and found else None
    return {"runs_s": runs_s, "best_s": min(runs_s), "heavy_imported": heavy, "loadavg_before": loadavg_before}


def build_long_video(ffmpeg: Path, source: Path, seconds: float, cache: Path) -> Path:
    """``source`` repeated (ffmpeg concat, stream copy) and cut to ``seconds``; built once, then reused.

    The file name carries the source's hash, so an edited example clip gets a new video.

    Raises:
        RuntimeError: ffmpeg failed (its last stderr line is kept).
    """
    from extractors.media import probe

    target = cache / f"{source.stem}-{int(seconds)}s-{sha256_of(source)[:12]}.mp4"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    copies = int(seconds // probe(source, ffmpeg).duration_s) + 1
    log.info("building %s (%d copies of %s)", target, copies, source.name)
    with tempfile.TemporaryDirectory(dir=cache) as tmp, atomic_path(target) as partial:
        listing = Path(tmp) / "list.txt"
        quoted = str(source.resolve()).replace("'", "'\\''")
        listing.write_text(f"file '{quoted}'\n" * copies)
        cmd = [str(ffmpeg), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
               "-i", str(listing), "-c", "copy", "-t", f"{seconds:g}", str(partial)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:  # raising inside atomic_path removes the partial file
            raise RuntimeError(f"ffmpeg could not build {target.name}: {done.stderr.strip()[-300:]}")
    return target  # the cached name only ever holds a complete video


def plan_cases(quick: bool, cache: Path) -> tuple[list[Case], list[dict[str, str]]]:
    """The cases to run, and those skipped with the reason."""
    from extractors.assets import resolve_ffmpeg

    cases = [Case("example", (EXAMPLE_CLIP,))]
    skipped: list[dict[str, str]] = []
    shared = shared_data_dir()
    grid = sorted((shared / "clips" / "grid").glob("*.mpg"))
    if grid:
        cases.append(Case("grid-batch", tuple(grid)))
    else:
        skipped.append({"name": "grid-batch", "reason": f"no GRID clips under {shared} (set MIAR_SHARED)"})
    silent = shared / "clips" / "pyfeat" / "WolfgangLanger_Pexels.mp4"
    if silent.is_file():
        cases.append(Case("silent-19.7s", (silent,),
                          note="silent audio: no speech recognised, so the run stops after ASR (status no_speech)"))
    else:
        skipped.append({"name": "silent-19.7s", "reason": f"{silent} not found (set MIAR_SHARED)"})
    ffmpeg = resolve_ffmpeg()
    for name, seconds in LONG_VIDEOS_S.items():
        if quick and seconds > 60:
            skipped.append({"name": name, "reason": "--quick"})
            continue
        video = build_long_video(ffmpeg, EXAMPLE_CLIP, seconds, cache)
        cases.append(Case(name, (video,), measure_limits=True,
                          note=f"example.mp4 repeated to {seconds:g} s (stream copy): {video}"))
    return cases, skipped


def run_case(case: Case, weights: Path | None) -> dict[str, Any]:
    """Run one case in a fresh interpreter; returns its measurements, or an ``error`` entry."""
    with tempfile.TemporaryDirectory(prefix="miar-bench-") as tmp:
        spec = Path(tmp) / "spec.json"
        result = Path(tmp) / "result.json"
        spec.write_text(json.dumps({"name": case.name, "inputs": [str(p) for p in case.inputs],
                                    "measure_limits": case.measure_limits,
                                    "weights": str(weights) if weights else None, "result": str(result)}))
        log.info("running %s (%d input%s) in a fresh process", case.name, len(case.inputs),
                 "" if len(case.inputs) == 1 else "s")
        began = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec)],
                                  cwd=REPO_ROOT, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            return {"name": case.name, "error": f"timed out after {WORKER_TIMEOUT_S:.0f} s"}
        process_s = time.perf_counter() - began
        if done.returncode != 0 or not result.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            return {"name": case.name, "error": f"worker exited {done.returncode}:\n{tail}"}
        measured = json.loads(result.read_text())
    measured["process_s"] = process_s
    measured["note"] = case.note
    videos = measured["videos"]
    media_s = sum(v["media_s"] for v in videos)
    wall_s = sum(v["wall_s"] for v in videos)
    cpu_s = sum(v["cpu_s"] for v in videos)
    stage_s = {s: sum(v["stage_s"].get(s, 0.0) for v in videos) for s in STAGES}
    stage_s["other"] = max(0.0, wall_s - sum(stage_s.values()))  # splitting, signals, bookkeeping
    not_run = [s for s in STAGES if not any(s in v["stage_s"] for v in videos)]
    measured["totals"] = {"media_s": media_s, "wall_s": wall_s, "cpu_s": cpu_s,
                          "rtf": wall_s / media_s if media_s else None, "stage_s": stage_s, "stages_not_run": not_run,
                          "s_per_input": wall_s / len(videos)}
    if "limits" in measured:
        lim = measured["limits"]
        lim["overhead_ratio"] = wall_s / lim["asr_alone_s"] if lim["asr_alone_s"] > 0 else None
        lim["overhead_ratio_cpu"] = cpu_s / lim["asr_alone_cpu_s"] if lim["asr_alone_cpu_s"] > 0 else None
        lim["asr_alone_rtf"] = lim["asr_alone_s"] / media_s if media_s else None
    return measured


def judge(runs: dict[str, dict[str, Any]], start: dict[str, Any], targets: Targets) -> list[dict[str, Any]]:
    """Each target with its measured value and PASS (True), MISS (False) or not measured (None)."""
    def get(name: str, *keys: str) -> float | None:
        value: Any = runs.get(name)
        if value is None or "error" in value:
            return None
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def row(label: str, value: float | None, limit: float, unit: str, why_missing: str = "") -> dict[str, Any]:
        return {"target": label, "value": value, "limit": limit, "unit": unit,
                "passed": None if value is None else value <= limit,
                "note": why_missing if value is None else ""}

    long_rtf = get("long-10min", "totals", "rtf")
    ratio = get("long-10min", "limits", "overhead_ratio")
    rss_all = [r["peak_rss_mb"] for r in runs.values() if "peak_rss_mb" in r]
    rss_1, rss_10 = get("long-1min", "peak_rss_mb"), get("long-10min", "peak_rss_mb")
    growth = abs(rss_10 - rss_1) / rss_1 if rss_1 and rss_10 is not None else None
    cold = [r["cold_start"]["total_s"] for r in runs.values() if "cold_start" in r]
    not_run = "10-minute video not run (--quick or failed)"
    return [
        row("10-min video RTF", long_rtf, targets.long_rtf, "", not_run),
        row("10-min total / ASR alone", ratio, targets.asr_overhead_ratio, "x", not_run),
        row("peak RSS, worst run", max(rss_all) if rss_all else None, targets.peak_rss_mb, "MB", "no run finished"),
        row("peak RSS 10-min vs 1-min", growth, targets.rss_growth, "rel", not_run),
        row("GRID batch, s per clip", get("grid-batch", "totals", "s_per_input"), targets.grid_s_per_clip, "s",
            "GRID batch not run or failed"),
        row("cold start, worst run", max(cold) if cold else None, targets.cold_start_s, "s", "no run finished"),
        row(f"--help, best of {HELP_RUNS}", start.get("best_s"), targets.help_s, "s",
            start.get("error", "not measured")),
    ]


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def render_start(start: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    """One line: ``--help`` start-up beside the cold starts (imports + model loads) of the runs."""
    if "error" in start:
        return f"start: {start['error']}"
    heavy = start["heavy_imported"]
    imported = "unknown" if heavy is None else ", ".join(heavy) or "none"
    cold = [r["cold_start"]["total_s"] for r in runs.values() if "cold_start" in r]
    cold_text = f"{min(cold):.2f}-{max(cold):.2f} s" if cold else "not measured"
    return (f"start: `python -m pipeline --help` {start['best_s']:.2f} s (best of {len(start['runs_s'])}: "
            f"{' '.join(f'{t:.2f}' for t in start['runs_s'])}; heavy modules imported: {imported}); "
            f"cold start (imports + Models.load) {cold_text}")


def render(report: dict[str, Any]) -> str:
    """The human-readable table: header, one block per case, a summary, the targets."""
    m = report["machine"]
    lines = [
        "MIAR pipeline speed benchmark (bench/speed.py)",
        f"date {m['date']}  host {m['host']}  python {m['python']}",
        f"cpu {m['cpu_model']}  cores {m['cores']} (usable {m['cores_usable']})  "
        f"memory {_fmt(m['mem_total_gb'], '.1f')} GB  load average {' '.join(f'{x:.2f}' for x in m['loadavg'])}",
        f"weights {report['settings']['weights']}  asr {report['settings']['asr_model']}  "
        f"face fps {report['settings']['frame_fps']:g}  torch threads {report['settings']['torch_threads']}  "
        f"load average at end {report['settings']['loadavg_at_end'][0]:.2f}",
        render_start(report["start"], report["runs"]),
        "",
    ]
    for run in report["runs"].values():
        if "error" in run:
            lines += [f"== {run['name']}: FAILED", run["error"], ""]
            continue
        t = run["totals"]
        videos = run["videos"]
        statuses = sorted({v["status"] for v in videos})
        cold = run["cold_start"]
        lines.append(f"== {run['name']}: {len(videos)} input{'s' if len(videos) > 1 else ''}, "
                     f"{t['media_s']:.1f} s of media, {sum(v['utterances'] for v in videos)} utterances, "
                     f"status {'/'.join(statuses)}")
        lines.append(f"   {'stage':<9} {'seconds':>9} {'share':>7} {'RTF':>7}")
        for stage, seconds in t["stage_s"].items():
            if stage in t["stages_not_run"]:
                lines.append(f"   {stage:<9} {'not run':>9}")
                continue
            share = seconds / t["wall_s"] if t["wall_s"] else 0.0
            lines.append(f"   {stage:<9} {seconds:9.2f} {share:7.1%} {seconds / t['media_s']:7.3f}")
        lines.append(f"   {'total':<8} {t['wall_s']:9.2f} {1:7.1%} {t['rtf']:7.3f}   (CPU {t['cpu_s']:.2f} s)")
        if len(videos) > 1:
            per = [v["wall_s"] for v in videos]
            lines.append(f"   per input after start-up: mean {t['s_per_input']:.2f} s, first {per[0]:.2f} s, "
                         f"min {min(per):.2f} s, max {max(per):.2f} s")
        lines.append(f"   cold start {cold['total_s']:.2f} s (imports {cold['imports_s']:.2f} s + Models.load "
                     f"{cold['models_load_s']:.2f} s); peak RSS {run['peak_rss_mb']:.0f} MB (after load "
                     f"{run['rss_after_load_mb']:.0f} MB); load average before {run['loadavg_before'][0]:.2f}")
        if "limits" in run:
            lim = run["limits"]
            lines.append(f"   limits: ffmpeg audio decode alone {lim['decode_audio_alone_s']:.2f} s, frame decode "
                         f"alone {lim['decode_frames_alone_s']:.2f} s ({lim['frames']} frames), ASR alone "
                         f"{lim['asr_alone_s']:.2f} s (RTF {_fmt(lim['asr_alone_rtf'], '.3f')}, CPU "
                         f"{lim['asr_alone_cpu_s']:.2f} s; load average before {lim['loadavg_before'][0]:.2f})")
            lines.append(f"   total / ASR alone = {_fmt(lim['overhead_ratio'], '.2f')} (wall), "
                         f"{_fmt(lim['overhead_ratio_cpu'], '.2f')} (CPU seconds, less sensitive to other load)")
        if run.get("note"):
            lines.append(f"   note: {run['note']}")
        lines.append("")
    for skip in report["skipped"]:
        lines.append(f"== {skip['name']}: skipped ({skip['reason']})")
    if report["skipped"]:
        lines.append("")
    lines.append(render_targets(report["targets"]))
    return "\n".join(lines)


def render_targets(targets: list[dict[str, Any]]) -> str:
    """``targets`` and one PASS / MISS / ---- line per target (---- = not measured, with why)."""
    lines = ["targets"]
    for t in targets:
        verdict = {True: "PASS", False: "MISS", None: "----"}[t["passed"]]
        spec = {"rel": ".1%", "MB": ".0f"}.get(t["unit"], ".2f")
        unit = "" if t["unit"] in ("", "rel") else f" {t['unit']}"
        value = "n/a" if t["value"] is None else f"{t['value']:{spec}}{unit}"
        limit = f"{t['limit']:.0%}" if t["unit"] == "rel" else f"{t['limit']:g}{unit}"
        lines.append(f"   {verdict}  {t['target']:<26} {value:>10}  (limit {limit})  {t['note']}".rstrip())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/speed.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 10-minute video")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results here")
    parser.add_argument("--weights", type=Path, default=None, metavar="DIR",
                        help="MIAR weights folder (default: the pipeline's, weights/miar-v7)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="where the long videos are built and kept (default: $MIAR_CACHE/bench)")
    parser.add_argument("--start-only", action="store_true",
                        help="only time `python -m pipeline --help` (no model is loaded, no case runs)")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    if args.worker is not None:
        for noisy in ("faster_whisper", "httpx", "urllib3", "PIL", "matplotlib", "numba"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        run_worker(args.worker)
        return 0

    start = measure_help()
    if args.start_only:
        print(render_start(start, {}))
        print(render_targets([t for t in judge({}, start, Targets()) if t["target"].startswith("--help")]))
        return 1 if "error" in start else 0

    from pipeline import PipelineConfig

    config = PipelineConfig() if args.weights is None else PipelineConfig().with_overrides(weights_dir=args.weights)
    if not (config.weights_dir / "config.json").is_file():
        log.error("no weights in %s: pass --weights DIR", config.weights_dir)
        return 1
    machine = machine_info()
    cases, skipped = plan_cases(args.quick, args.cache or cache_dir() / "bench")
    runs: dict[str, dict[str, Any]] = {}
    for case in cases:
        if runs and all("error" in r for r in runs.values()):  # the set-up is broken (weights, models)
            skipped.append({"name": case.name, "reason": "not run: every run so far failed (see above)"})
            continue
        runs[case.name] = run_case(case, args.weights)
    report = {
        "machine": machine,
        "settings": {"weights": str(config.weights_dir), "asr_model": config.asr.model,
                     "frame_fps": config.media.frame_fps, "torch_threads": config.torch_threads,
                     "quick": args.quick, "loadavg_at_end": list(os.getloadavg())},
        "start": start,
        "runs": runs,
        "skipped": skipped,
    }
    report["targets"] = judge(runs, start, Targets())
    print(render(report))
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
        log.info("wrote %s", args.json)
    return 1 if any("error" in r for r in runs.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
