"""What MTCNN's re-check cadence costs and changes: the face stage alone, on one video, at several cadences.

    python bench/face_cadence.py [VIDEO] [--recheck-s 2,6] [--repeats 2]

The face stage (``extractors.face.FaceExtractor``) runs on the frames the pipeline samples
(``MediaOptions.frame_fps``, ``max_side_px``) once per ``FaceOptions.recheck_every_s`` given,
the cadences taking turns ``--repeats`` times so that machine load falls on each alike. For
each cadence it prints the frames, the MTCNN images (the scheduled and the lost-face
detections), the stage's CPU and wall seconds (best of the repeats; frames are decoded
beforehand, so ffmpeg is not counted), and how far its per-frame features (blendshapes, head
pose) are from those of the first cadence listed: mean and largest absolute difference
per value, and the share of frames whose face presence differs.

The default video is the bench's 1-minute talking head (``python bench/speed.py --quick`` builds
it from ``examples/example.mp4`` in ``$MIAR_CACHE/bench``). Load moves the seconds; the image counts
and the differences do not.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.face_cadence")


def measure(video: Path, cadences_s: list[float], repeats: int) -> list[dict[str, float]]:
    """One row per cadence: frames, MTCNN images, best CPU and wall seconds, and the features' distance to
    the first cadence's."""
    import torch

    from extractors.assets import resolve_ffmpeg
    from extractors.face import FaceExtractor, FaceOptions
    from extractors.media import MediaOptions, iter_frames, probe

    torch.set_num_threads(1)  # as the pipeline runs this stage (PipelineConfig.torch_threads)
    ffmpeg, media_options = resolve_ffmpeg(), MediaOptions()
    frames = list(iter_frames(probe(video, ffmpeg), ffmpeg, media_options.frame_fps, media_options.max_side_px))
    log.info("%s: %d frames at %g fps", video.name, len(frames), media_options.frame_fps)
    best = {c: (np.inf, np.inf) for c in cadences_s}
    images, tracks = {}, {}
    for _ in range(repeats):
        for cadence in cadences_s:
            with FaceExtractor(replace(FaceOptions(), recheck_every_s=cadence)) as extractor:
                seen: list[int] = []
                detect = extractor._detect

                def counting(batch: list[np.ndarray], detect=detect, seen=seen) -> list[np.ndarray]:
                    seen.append(len(batch))
                    return detect(batch)

                extractor._detect = counting  # counts MTCNN's images; the work is the extractor's own
                cpu, wall = time.process_time(), time.perf_counter()
                tracks[cadence] = extractor.extract(frames)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[cadence] = (min(best[cadence][0], cpu), min(best[cadence][1], wall))
            images[cadence] = sum(seen)
    reference = tracks[cadences_s[0]]
    rows = []
    for cadence in cadences_s:
        track = tracks[cadence]
        both = reference.present & track.present
        diff = np.abs(track.values[both] - reference.values[both]) if both.any() else np.zeros((0, 1))
        rows.append({
            "recheck_every_s": cadence, "frames": float(len(track.times_s)), "mtcnn_images": float(images[cadence]),
            "cpu_s": best[cadence][0], "wall_s": best[cadence][1],
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "presence_differs": float(np.mean(reference.present != track.present)) if len(track.times_s) else 0.0,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    from storage.locations import cache_dir

    parser = argparse.ArgumentParser(prog="python bench/face_cadence.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path, default=None,
                        help="a video (default: the bench's 1-minute one, built by bench/speed.py --quick)")
    parser.add_argument("--recheck-s", default="2,6",
                        help="FaceOptions.recheck_every_s values, comma-separated; the first is the reference")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each cadence, taking turns (best kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    video = args.video
    if video is None:
        built = sorted((cache_dir() / "bench").glob("example-60s-*.mp4"), key=lambda p: p.stat().st_mtime)
        if not built:
            log.error("no 1-minute bench video in %s: run `python bench/speed.py --quick` once, or pass VIDEO",
                      cache_dir() / "bench")
            return 1
        video = built[-1]
    if not video.is_file():
        log.error("%s: no such file", video)
        return 1
    try:
        cadences = [float(c) for c in args.recheck_s.split(",")]
    except ValueError:
        log.error("--recheck-s %r: expected seconds, comma-separated", args.recheck_s)
        return 2
    if args.repeats < 1 or not cadences or min(cadences) <= 0:
        log.error("--repeats must be >= 1 and every cadence > 0 s")
        return 2
    rows = measure(video, cadences, args.repeats)
    print(f"{video.name}: face stage alone, best of {args.repeats}; differences against re-checks every "
          f"{cadences[0]:g} s (blendshapes 0..1, head pose in degrees, face height)")
    print(f"{'recheck s':>9} {'frames':>7} {'MTCNN images':>13} {'CPU s':>7} {'wall s':>7} {'mean |diff|':>12} "
          f"{'max |diff|':>11} {'presence differs':>17}")
    for r in rows:
        print(f"{r['recheck_every_s']:>9g} {r['frames']:>7.0f} {r['mtcnn_images']:>13.0f} {r['cpu_s']:>7.2f} "
              f"{r['wall_s']:>7.2f} {r['mean_abs_diff']:>12.4f} {r['max_abs_diff']:>11.3f} "
              f"{100 * r['presence_differs']:>16.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
