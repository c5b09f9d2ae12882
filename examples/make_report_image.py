"""Regenerate the README's report picture (docs/report-example.png) from the example clip.

    python examples/make_report_image.py               # docs/report-example.png + docs/report-example.json
    python examples/make_report_image.py --expected    # also examples/expected/example.csv

Scores examples/example.mp4 with the shipped weights through the public API, exactly as
``python -m pipeline run examples/example.mp4 --report`` does, into a temporary folder. The
HTML report is then photographed by headless Chromium (``apt-get install -y chromium``, see
the README's set-up); without Chromium the report's matplotlib plot is the picture. Beside
the picture goes ``docs/report-example.json``: the scores it shows, the weights' and the
clip's SHA-256, the renderer and the picture's own SHA-256. ``tests/test_report.py`` checks
that picture and sidecar belong together and that a fresh run of the shipped weights gives
the sidecar's scores, so a stale picture fails a test instead of misleading a reader.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from pipeline import BatchPlan, PipelineConfig, WriteOptions, score_videos
from pipeline.output import UtteranceRow
from storage.files import sha256_of, write_text_atomic, write_via_atomic
from storage.locations import REPO_ROOT

log = logging.getLogger("make_report_image")

CLIP = Path("examples") / "example.mp4"
PICTURE = Path("docs") / "report-example.png"
SIDECAR = Path("docs") / "report-example.json"
EXPECTED_CSV = Path("examples") / "expected" / "example.csv"
#: The row fields the picture shows and the sidecar records.
DRAWN_FIELDS = ("utterance", "start_s", "end_s", "text", "sentiment", "polarity", "text_score", "voice_score",
                "face_score")
#: Browser window of the screenshot; the picture is then cut below the page's last line.
WINDOW_PX = (1200, 2400)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> Path | None:
    """A headless-capable Chromium on PATH (or /usr/bin/chromium), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return Path("/usr/bin/chromium") if Path("/usr/bin/chromium").exists() else None


def screenshot(chromium: Path, html: Path, scratch: Path) -> bytes:
    """The page as headless Chromium paints it, cut below its last painted row (PNG bytes).

    Raises:
        RuntimeError: Chromium failed or wrote no picture.
    """
    from PIL import Image, ImageChops

    shot = scratch / "shot.png"
    cmd = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={scratch / 'profile'}", f"--window-size={WINDOW_PX[0]},{WINDOW_PX[1]}",
           f"--screenshot={shot}", html.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not shot.is_file():
        raise RuntimeError(f"{chromium} could not photograph {html}: {done.stderr.strip()[-500:]}")
    with Image.open(shot) as image:
        page = image.convert("RGB")
    painted = ImageChops.difference(page, Image.new("RGB", page.size, "white")).getbbox()
    bottom = min(page.height, (painted[3] if painted else page.height) + 24)
    out = io.BytesIO()
    page.crop((0, 0, page.width, bottom)).save(out, format="PNG")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expected", action="store_true", help=f"also rewrite {EXPECTED_CSV}")
    parser.add_argument("--renderer", choices=("auto", "chromium", "matplotlib"), default="auto",
                        help="auto: Chromium when installed, else the matplotlib plot")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.chdir(REPO_ROOT)  # the page shows the clip as examples/example.mp4, as the README's command does
    chromium = None if args.renderer == "matplotlib" else find_chromium()
    if args.renderer == "chromium" and chromium is None:
        log.error("Chromium not found (apt-get install -y chromium)")
        return 1

    config = PipelineConfig()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        outcome, = score_videos(BatchPlan.build([CLIP], WriteOptions(scratch / "out", report=True)), config)
        if outcome.status != "ok" or outcome.result is None:
            log.error("%s was not scored: %s", CLIP, outcome.error or outcome.status)
            return 1
        html, plot = scratch / "out" / "example.html", scratch / "out" / "example.png"
        picture = screenshot(chromium, html, scratch) if chromium else plot.read_bytes()
        renderer = f"headless {chromium.name}" if chromium else "matplotlib"
        rows = [UtteranceRow.of(outcome.result, u, config.output) for u in outcome.result.utterances]
        write_via_atomic(REPO_ROOT / PICTURE, lambda path: path.write_bytes(picture))
        if args.expected:
            csv_text = (scratch / "out" / "example.csv").read_text(encoding="utf-8")
            write_text_atomic(REPO_ROOT / EXPECTED_CSV, csv_text)
    sidecar = {
        "what": f"the scores {PICTURE} shows (examples/make_report_image.py; checked by tests/test_report.py)",
        "clip": str(CLIP), "clip_sha256": sha256_of(REPO_ROOT / CLIP),
        "weights": config.weights_dir.name, "model_sha256": sha256_of(config.weights_dir / "model.pt"),
        "renderer": renderer, "image_sha256": sha256_of(REPO_ROOT / PICTURE),
        "rows": [{k: v for k, v in asdict(row).items() if k in DRAWN_FIELDS} for row in rows],
    }
    write_text_atomic(REPO_ROOT / SIDECAR, json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n")
    log.info("%s (%s) and %s written%s", PICTURE, renderer, SIDECAR, f", and {EXPECTED_CSV}" if args.expected else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
