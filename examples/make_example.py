"""Remake ``examples/example.mp4``, the project's own talking-head clip.

How it is made:

* Picture: ``skimage.data.astronaut()`` (Eileen Collins, NASA portrait; public domain as a
  work of the US federal government), 512x512 RGB. Each frame is an affine view of the
  still: a slow ease-in zoom towards the face plus a small hand-held sway (a slight
  rotation about the neck and a drift of a few pixels), so consecutive frames differ
  the way a real recording does while the face stays whole, frontal and in view.
  The sway's phases come from a generator with a fixed seed, so the motion is the same
  on every run. 480x480, 25 fps, H.264 yuv420p.
* Sound: ``examples/sentences.txt``, one utterance per line, spoken by ``espeak-ng``
  (voice ``en-us+f2``, 145 words per minute), utterances separated by 1 s of silence
  (as long as the pipeline's ``UtteranceOptions.pause_s``, so the utterances stay apart
  even if Whisper drops a full stop), AAC mono at 16 kHz (Whisper's rate).
* Licence: the astronaut photograph is public domain (NASA); the sentences and the
  espeak-ng rendering of them are ours and ship under the project's licence.

Only remaking the clip needs ``espeak-ng`` (a system package); the mp4 is committed, so
users and CI never run this script. It imports the project as installed by the README's
set-up (``pip install -e .``), so it runs from any folder. The ffmpeg binary is the one
``extractors.assets.resolve_ffmpeg()`` finds (imageio-ffmpeg's). Bit-exact flags keep
encoder version strings out of the file, so the same tool versions give the same bytes.

Usage::

    python examples/make_example.py [--out examples/example.mp4]
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from extractors.assets import resolve_ffmpeg
from storage.files import atomic_path

log = logging.getLogger("make_example")

EXAMPLES_DIR = Path(__file__).resolve().parent
SENTENCES_PATH = EXAMPLES_DIR / "sentences.txt"
DEFAULT_OUT = EXAMPLES_DIR / "example.mp4"


class ExampleBuildError(RuntimeError):
    """A tool the clip needs is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class ClipOptions:
    """Everything that decides what the clip looks and sounds like.

    Attributes:
        voice: espeak-ng voice; a female US voice to match the face.
        speed_wpm: espeak-ng speaking rate in words per minute; 145 is where Whisper
            tiny.en transcribed every word of the sentences (140-150 all near 0% WER).
        lead_in_s: Silence before the first utterance, as in a real recording.
        pause_s: Silence between utterances.
        tail_s: Silence after the last utterance.
        sample_rate_hz: Audio rate in the mp4; 16 kHz is what Whisper resamples to.
        audio_bitrate: AAC bitrate (speech only, mono).
        size_px: Output width and height (square, even for yuv420p).
        fps: Frames per second.
        crf: x264 constant rate factor; 24 keeps the file near 1 MB.
        zoom_start: Zoom factor of the first frame (1 would be the whole still); above 1
            so that the sway has still pixels to move into.
        zoom_end: Zoom factor reached at the end.
        face_pull: How far the view's centre moves from the still's centre towards the
            face as the zoom completes (0 none, 1 centred on the face).
        sway_deg: Peak rotation of the sway, degrees.
        drift_px: Peak drift of the sway, still pixels.
        margin_px: Still pixels kept free around the unswayed view for the sway to use.
        seed: Seeds the sway's phases.
    """

    voice: str = "en-us+f2"
    speed_wpm: int = 145
    lead_in_s: float = 0.5
    pause_s: float = 1.0
    tail_s: float = 0.8
    sample_rate_hz: int = 16_000
    audio_bitrate: str = "48k"
    size_px: int = 480
    fps: int = 25
    crf: int = 24
    zoom_start: float = 1.08
    zoom_end: float = 1.3
    face_pull: float = 0.8
    sway_deg: float = 1.2
    drift_px: float = 4.0
    margin_px: float = 16.0
    seed: int = 20_240_601


#: Where the still's face is (MTCNN box centre, source pixels); the zoom heads there.
FACE_CENTRE_XY = (224.0, 117.0)
#: Pivot of the sway: the neck, so the head tilts as people do when they talk.
SWAY_PIVOT_XY = (224.0, 230.0)


def read_sentences(path: Path) -> list[str]:
    """Non-empty lines of ``path``: one utterance each."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in lines if line]
    if not sentences:
        raise ExampleBuildError(f"{path} holds no sentences")
    return sentences


def synthesise_speech(
    sentences: Sequence[str], options: ClipOptions, work_dir: Path
) -> tuple[np.ndarray, int]:
    """Speak each sentence with espeak-ng and join them with silences.

    Returns:
        (samples, rate_hz): int16 mono samples at espeak-ng's own rate (22.05 kHz);
        ffmpeg resamples once, when encoding.

    Raises:
        ExampleBuildError: espeak-ng is not installed or fails.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ExampleBuildError(
            "espeak-ng not found: install it (apt-get install espeak-ng) to remake the clip"
        )
    pieces: list[np.ndarray] = []
    rate_hz = 0
    for i, sentence in enumerate(sentences):
        wav_path = work_dir / f"utterance{i}.wav"
        cmd = [espeak, "-v", options.voice, "-s", str(options.speed_wpm), "-w", str(wav_path), sentence]
        try:
            subprocess.run(cmd, check=True, capture_output=True)
        except subprocess.CalledProcessError as e:
            stderr = e.stderr.decode(errors="replace").strip()
            raise ExampleBuildError(f"espeak-ng failed on {sentence!r}: {stderr}") from e
        with wave.open(str(wav_path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ExampleBuildError(f"espeak-ng wrote {wav.getparams()}, expected 16-bit mono")
            rate_hz = wav.getframerate()
            pieces.append(np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"))

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * rate_hz), dtype=np.int16)

    joined: list[np.ndarray] = [silence(options.lead_in_s)]
    for i, piece in enumerate(pieces):
        joined += [piece] if i == 0 else [silence(options.pause_s), piece]
    joined.append(silence(options.tail_s))
    return np.concatenate(joined), rate_hz


def write_wav(path: Path, samples: np.ndarray, rate_hz: int) -> None:
    """16-bit mono PCM WAV, the input ffmpeg encodes to AAC."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.astype("<i2").tobytes())


def _smoothstep(x: float) -> float:
    """0 to 1 with zero slope at both ends, so the zoom starts and stops gently."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def camera_path(n_frames: int, still_px: int, options: ClipOptions) -> list[np.ndarray]:
    """One affine map per frame, from output pixel (x, y, 1) to still pixel (x, y).

    The view is a square window of the still, ``still_px / zoom`` wide, whose centre
    moves from the still's centre towards the face as the zoom grows (kept
    ``margin_px`` inside the still), then drifts and rotates about the neck with the
    sway. Each map is checked so that no output pixel samples outside the still: the
    clip never shows a border.

    Raises:
        ExampleBuildError: A frame would look outside the still (options too extreme).
    """
    rng = np.random.default_rng(options.seed)
    # Two incommensurate periods per motion, with random phases: a drift that never repeats exactly.
    phases = rng.uniform(0.0, 2.0 * math.pi, size=4)
    periods_s = (5.3, 3.1, 4.7, 2.9)
    size = options.size_px
    centre = np.array([still_px / 2.0, still_px / 2.0])
    face = np.array(FACE_CENTRE_XY)
    pivot = np.array(SWAY_PIVOT_XY)
    maps: list[np.ndarray] = []
    for k in range(n_frames):
        t_s = k / options.fps
        progress = _smoothstep(k / max(n_frames - 1, 1))
        zoom = options.zoom_start + (options.zoom_end - options.zoom_start) * progress
        waves = [math.sin(2 * math.pi * t_s / period + phase) for period, phase in zip(periods_s, phases)]
        wave_a = 0.6 * waves[0] + 0.4 * waves[1]
        wave_b = 0.6 * waves[2] + 0.4 * waves[3]
        # Ramp the sway in over the first second so the clip starts still, as a recording does.
        ramp = min(t_s, 1.0)
        angle = math.radians(options.sway_deg * wave_a * ramp)
        drift = np.array([options.drift_px * wave_b, 0.5 * options.drift_px * wave_a]) * ramp
        window_px = still_px / zoom
        half = window_px / 2.0
        view_centre = centre + (face - centre) * progress * options.face_pull
        low, high = half + options.margin_px, still_px - half - options.margin_px
        view_centre = np.clip(view_centre, low, high) + drift
        scale = window_px / size  # still pixels per output pixel
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        rot = np.array([[cos_a, -sin_a], [sin_a, cos_a]])
        # output -> window (unrotated) -> rotate about the pivot in the still.
        lin = rot @ (np.eye(2) * scale)
        offset = rot @ (view_centre - half - pivot) + pivot
        affine = np.hstack([lin, offset[:, None]])
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=float)
        mapped = corners @ affine.T
        if mapped.min() < 0.0 or mapped.max() > still_px:
            raise ExampleBuildError(
                f"frame {k} would show outside the still (corners {mapped.round(1).tolist()})"
            )
        maps.append(affine)
    return maps


def render_frames(still: np.ndarray, maps: Sequence[np.ndarray], size_px: int) -> Iterator[bytes]:
    """RGB24 bytes of each frame, resampled bicubically from the still."""
    image = Image.fromarray(still)
    for affine in maps:
        frame = image.transform(
            (size_px, size_px),
            Image.Transform.AFFINE,
            tuple(affine.ravel()),
            resample=Image.Resampling.BICUBIC,
        )
        yield frame.tobytes()


def encode(
    frames: Iterator[bytes], n_frames: int, wav_path: Path, out_path: Path, options: ClipOptions
) -> None:
    """Pipe the frames to ffmpeg with the WAV and write ``out_path`` atomically.

    Raises:
        ExampleBuildError: ffmpeg fails (its stderr is in the message) or ``out_path`` cannot be written.
    """
    try:
        with atomic_path(out_path) as tmp_path:  # removed again if ffmpeg fails
            _run_ffmpeg(frames, n_frames, wav_path, tmp_path, out_path, options)
    except OSError as e:
        raise ExampleBuildError(f"cannot write {out_path}: {e}") from e


def _run_ffmpeg(
    frames: Iterator[bytes], n_frames: int, wav_path: Path, tmp_path: Path, out_path: Path, options: ClipOptions
) -> None:
    """Encode the frames and the WAV into ``tmp_path`` (``-y``: atomic_path made the file already)."""
    ffmpeg = resolve_ffmpeg()
    size = f"{options.size_px}x{options.size_px}"
    cmd = [
        str(ffmpeg), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-r", str(options.fps), "-i", "pipe:0",
        "-i", str(wav_path),
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "slow", "-crf", str(options.crf), "-pix_fmt", "yuv420p",
        "-threads", "1", "-g", str(2 * options.fps),
        "-c:a", "aac", "-b:a", options.audio_bitrate, "-ar", str(options.sample_rate_hz), "-ac", "1",
        "-frames:v", str(n_frames), "-shortest",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-movflags", "+faststart",
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        for frame in frames:
            proc.stdin.write(frame)
    except BrokenPipeError:
        pass  # ffmpeg stopped early; its stderr below says why
    finally:
        proc.stdin.close()
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise ExampleBuildError(f"ffmpeg failed writing {out_path}: {stderr.strip()}")


def make_example(
    out_path: Path, options: ClipOptions = ClipOptions(), sentences_path: Path = SENTENCES_PATH
) -> Path:
    """Build the example clip at ``out_path`` (see the module docstring).

    Returns:
        ``out_path``.

    Raises:
        ExampleBuildError: espeak-ng or ffmpeg is missing or fails.
    """
    from skimage import data  # only the remake needs scikit-image's bundled still

    still = data.astronaut()
    sentences = read_sentences(sentences_path)
    with tempfile.TemporaryDirectory(prefix="make_example.") as tmp:
        work_dir = Path(tmp)
        samples, rate_hz = synthesise_speech(sentences, options, work_dir)
        duration_s = len(samples) / rate_hz
        n_frames = math.ceil(duration_s * options.fps)
        # Pad the audio to the last frame's end so both streams stop together.
        padding = np.zeros(round(n_frames / options.fps * rate_hz) - len(samples), np.int16)
        samples = np.concatenate([samples, padding])
        wav_path = work_dir / "speech.wav"
        write_wav(wav_path, samples, rate_hz)
        maps = camera_path(n_frames, still.shape[0], options)
        duration_s = n_frames / options.fps
        log.info("%d utterances, %.2f s, %d frames -> %s", len(sentences), duration_s, n_frames, out_path)
        encode(render_frames(still, maps, options.size_px), n_frames, wav_path, out_path, options)
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Remake the example clip (needs espeak-ng).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output mp4 (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        path = make_example(args.out)
    except ExampleBuildError as e:
        log.error("%s", e)
        return 1
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
