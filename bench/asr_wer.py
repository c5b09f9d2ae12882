"""Word error rate of the pipeline's speech recogniser on the GRID clips (and the example).

    python -m bench.asr_wer [--asr tiny.en|base]     # from the checkout's root (bench/ is not installed)

Prints one line per clip (reference, recognised, WER) and the mean. References:
``$MIAR_SHARED/data/clips/grid/transcripts.csv`` and ``examples/sentences.txt``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from bench.wer import word_error_rate
from extractors.assets import resolve_ffmpeg
from extractors.media import decode_audio
from extractors.transcript import AsrOptions, Transcriber
from storage.locations import REPO_ROOT, shared_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asr", default="tiny.en", help="Whisper model (default tiny.en)")
    args = parser.parse_args(argv)
    ffmpeg = resolve_ffmpeg()
    cases: list[tuple[Path, str]] = []
    grid = shared_data_dir() / "clips" / "grid"
    if (grid / "transcripts.csv").exists():
        with open(grid / "transcripts.csv") as f:
            cases += [(grid / row["path"], row["transcript"]) for row in csv.DictReader(f)]
    else:
        print(f"(no GRID clips under {grid}: set MIAR_SHARED)")
    sentences = (REPO_ROOT / "examples" / "sentences.txt").read_text().strip().replace("\n", " ")
    cases.append((REPO_ROOT / "examples" / "example.mp4", sentences))
    with tempfile.TemporaryDirectory() as cache:
        transcriber = Transcriber(AsrOptions(model=args.asr, language_id_model=None), Path(cache))
        rates = []
        for path, reference in cases:
            words = transcriber.transcribe(decode_audio(path, ffmpeg)).words
            hypothesis = " ".join(w.text for w in words)
            rates.append(word_error_rate(reference, hypothesis))
            print(f"{path.name:<14} WER {rates[-1]:5.3f}  ref: {reference[:60]!r}  asr: {hypothesis[:60]!r}")
    grid_rates = rates[:-1]
    if grid_rates:
        print(f"GRID mean WER ({args.asr}): {sum(grid_rates) / len(grid_rates):.3f} over {len(grid_rates)} clips")
    print(f"example WER ({args.asr}): {rates[-1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
