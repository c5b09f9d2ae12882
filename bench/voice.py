"""Time ``extract_voice`` on 60 s of 16 kHz speech: ``python bench/voice.py [--repeat 5] [--compare REV]``.

The speech is the MOSI clip ``$MIAR_SHARED/data/mosi/clips/03bSnISJMiM_1.wav`` (else the
example clip's audio) decoded with ``decode_audio`` and tiled to 60 s, as the figure in
``extractors/voice.py`` was measured. Prints best and median of ``--repeat`` runs and the
share of Praat's pitch, and PASS/MISS for the 0.25 s target. ``--compare REV`` also loads
``extractors/voice.py`` as it was at git revision REV and times both, interleaved, in this
one process (the machine's load moves every number, so only such side-by-side figures
compare).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from extractors.assets import resolve_ffmpeg
from extractors.media import SAMPLE_RATE_HZ, decode_audio
from extractors.voice import VoiceOptions, extract_voice
from storage.locations import REPO_ROOT, shared_data_dir

TARGET_S = 0.25


def _voice_at(revision: str) -> Callable[..., object]:
    """``extract_voice`` of ``extractors/voice.py`` as it was at a git revision."""
    source = subprocess.run(["git", "show", f"{revision}:extractors/voice.py"], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("voice_at_revision", f.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    Path(f.name).unlink()
    return module.extract_voice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs to time (default 5)")
    parser.add_argument("--compare", default=None, metavar="REV", help="also time voice.py of this git revision")
    args = parser.parse_args(argv)
    source = shared_data_dir() / "mosi" / "clips" / "03bSnISJMiM_1.wav"
    if not source.is_file():
        source = REPO_ROOT / "examples" / "example.mp4"
    audio = decode_audio(source, resolve_ffmpeg(), SAMPLE_RATE_HZ)
    audio = np.tile(audio, int(np.ceil(60 * SAMPLE_RATE_HZ / len(audio))))[: 60 * SAMPLE_RATE_HZ]
    versions: dict[str, Callable[..., object]] = {"this checkout": extract_voice}
    if args.compare:
        versions[args.compare] = _voice_at(args.compare)
    timings: dict[str, list[float]] = {name: [] for name in versions}
    for run in versions.values():
        run(audio[:SAMPLE_RATE_HZ], SAMPLE_RATE_HZ)  # warm-up (imports, FFT plans)
    for _ in range(max(1, args.repeat)):
        for name, run in versions.items():
            start = time.perf_counter()
            run(audio, SAMPLE_RATE_HZ, VoiceOptions())
            timings[name].append(time.perf_counter() - start)
    import parselmouth

    start = time.perf_counter()
    parselmouth.Sound(audio.astype(np.float64), float(SAMPLE_RATE_HZ)).to_pitch_ac(time_step=0.01, pitch_floor=60.0,
                                                                                    pitch_ceiling=500.0)
    praat_s = time.perf_counter() - start
    print(f"source: {source.name} tiled to 60 s; Praat pitch alone {praat_s:.3f} s")
    for name, times in timings.items():
        print(f"extract_voice per 60 s ({name}): best {min(times):.3f} s, median {float(np.median(times)):.3f} s "
              f"({len(times)} runs)")
    best = min(timings["this checkout"])
    print(f"target extract_voice <= {TARGET_S} s per 60 s: {'PASS' if best <= TARGET_S else 'MISS'} ({best:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
