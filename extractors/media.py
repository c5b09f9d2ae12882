"""Read media files with the ffmpeg binary: what is inside, the audio samples, sampled frames.

Only the ``ffmpeg`` executable is used (imageio-ffmpeg ships it; there is no ffprobe),
so ``probe`` reads the stream listing that ``ffmpeg -hide_banner -i FILE`` writes to
stderr. Audio and frames come through pipes as raw samples / raw RGB, which keeps
decoding in ffmpeg (every container and codec it knows, variable frame rate, rotation)
and out of Python.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from extractors.errors import MediaError, NoAudioTrackError, NoVideoTrackError
from extractors.records import Frame, Media

__all__ = ["MediaOptions", "NO_AUDIO_TRACK", "probe", "decode_audio", "iter_frames", "frame_count_estimate"]

log = logging.getLogger(__name__)

_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*:\s*(Video|Audio|Subtitle|Data|Attachment):\s*(.*)$")
# "320x240" but not the hex codec tag "0x31637661".
_SIZE = re.compile(r"(?<![\w/])([1-9]\d{0,4})x([1-9]\d{0,4})(?!\w)")
_FPS = re.compile(r"(\d+(?:\.\d+)?)\s*fps\b")
_TBR = re.compile(r"(\d+(?:\.\d+)?)(k?)\s*tbr\b")
_SAMPLE_RATE = re.compile(r"(\d+)\s*Hz\b")
# ffmpeg >= 7 writes "Display Matrix: rotation of 90.00 degrees", older ones "displaymatrix: ...".
_DISPLAY_MATRIX = re.compile(r"display\s*matrix:\s*rotation of\s*(-?\d+(?:\.\d+)?)\s*degrees", re.IGNORECASE)
_ROTATE_TAG = re.compile(r"^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$")

#: Seconds allowed for ``probe`` (it reads headers only; a stuck network mount should not hang a batch).
_PROBE_TIMEOUT_S = 60.0
#: What a user reads when a file holds no audio stream (after the file's name).
NO_AUDIO_TRACK = "no audio track, so there is nothing to hear or transcribe"
#: Decoded audio this much shorter than the container's duration is worth a warning.
_SHORT_AUDIO_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class MediaOptions:
    """How media is decoded for the feature extractors.

    Attributes:
        sample_rate_hz: Audio is resampled to this rate, mono. 16 kHz is what Whisper
            consumes and covers the voice band that the voice descriptors look at.
        frame_fps: Video frames sampled per second. 4 fps because facial expressions
            change over hundreds of milliseconds (a 250 ms step misses little; a word's
            interval takes the nearest frame when it holds none), while the face stage costs
            about 12 ms per frame on our CPU and runs beside speech recognition: on a
            10-minute video, 4 fps instead of 5 cut the whole pipeline by about 10%
            (bench/speed.py), bringing it within 1.6x of Whisper alone.
        max_side_px: Frames are scaled down (never up) so that their longest side is at
            most this; 640 px keeps a talking face well over the landmarker's input size
            while capping the cost of decoding and copying 1080p or 4K frames.
    """

    sample_rate_hz: int = 16000
    frame_fps: float = 4.0
    max_side_px: int = 640


def _check_file(path: Path) -> None:
    """Reject what ffmpeg would reject anyway, with a message a user understands."""
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")


def _input_url(path: Path) -> str:
    """The path as an ffmpeg input that is always a local file.

    Without the ``file:`` prefix, a name such as ``take:2.mp4`` would be read as a
    protocol ("take") and fail with a baffling error.
    """
    return f"file:{path}"


def _last_line(stderr: str) -> str:
    """ffmpeg's last non-empty stderr line, which usually names the real problem."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def _parse_probe(path: Path, stderr: str) -> Media:
    """Turn ``ffmpeg -i`` stream listing into a Media record (input #0 only)."""
    duration_s = 0.0
    if m := _DURATION.search(stderr):
        duration_s = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))

    video: str | None = None
    audio: str | None = None
    rotation_from_matrix: float | None = None
    rotation_from_tag: float | None = None
    in_video = False  # the side data and metadata lines after our chosen video stream
    for line in stderr.splitlines():
        if line.startswith(("Input #", "Output #", "Stream mapping")) and not line.startswith("Input #0"):
            break
        stream = _STREAM.match(line)
        if stream:
            kind, desc = stream.groups()
            in_video = False
            if kind == "Video" and video is None and "(attached pic)" not in desc:
                video, in_video = desc, True
            elif kind == "Audio" and audio is None:
                audio = desc
            continue
        if in_video:
            if (m := _DISPLAY_MATRIX.search(line)) and rotation_from_matrix is None:
                rotation_from_matrix = float(m.group(1))
            elif (m := _ROTATE_TAG.match(line)) and rotation_from_tag is None:
                rotation_from_tag = float(m.group(1))

    if video is None and audio is None:
        raise MediaError(f"{path}: no audio or video stream (ffmpeg: {_last_line(stderr)})")

    # rotation_deg is clockwise, like the legacy "rotate" tag; the display matrix angle is
    # counter-clockwise, so "rotation of -90.00 degrees" and "rotate: 90" mean the same.
    if rotation_from_matrix is not None:
        rotation_deg = int(round(-rotation_from_matrix)) % 360
    elif rotation_from_tag is not None:
        rotation_deg = int(round(rotation_from_tag)) % 360
    else:
        rotation_deg = 0
    rotation_deg = int(round(rotation_deg / 90.0)) * 90 % 360

    width = height = None
    fps = None
    video_codec = None
    if video is not None:
        video_codec = video.split()[0].rstrip(",")
        if m := _SIZE.search(video):
            width, height = int(m.group(1)), int(m.group(2))
            if rotation_deg in (90, 270):
                width, height = height, width  # ffmpeg's autorotate transposes when decoding
        if m := _FPS.search(video):
            fps = float(m.group(1))
        elif m := _TBR.search(video):
            fps = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
    audio_codec = None
    audio_sample_rate_hz = None
    if audio is not None:
        audio_codec = audio.split()[0].rstrip(",")
        if m := _SAMPLE_RATE.search(audio):
            audio_sample_rate_hz = int(m.group(1))

    return Media(
        path=path,
        duration_s=duration_s,
        has_audio=audio is not None,
        has_video=video is not None,
        width=width,
        height=height,
        fps=fps,
        rotation_deg=rotation_deg,
        audio_sample_rate_hz=audio_sample_rate_hz,
        video_codec=video_codec,
        audio_codec=audio_codec,
    )


def probe(path: Path, ffmpeg: Path) -> Media:
    """What streams a media file holds, read from ``ffmpeg -hide_banner -i FILE``.

    ffmpeg exits non-zero here even for good files ("At least one output file must be
    specified"), so success is judged by the stream listing, not the exit code.

    Args:
        path: Video or audio file.
        ffmpeg: The ffmpeg executable (``extractors.assets.resolve_ffmpeg()``).

    Returns:
        Duration, streams, frame size as displayed (after rotation) and codecs.

    Raises:
        MediaError: The file is missing, a directory, empty, not media ffmpeg can read,
            or has neither an audio nor a video stream. The message keeps ffmpeg's last
            stderr line.
    """
    path = Path(path)
    _check_file(path)
    cmd = [str(ffmpeg), "-nostdin", "-hide_banner", "-i", _input_url(path)]
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MediaError(f"{path}: could not run ffmpeg to read it: {e}") from e
    stderr = result.stderr.decode("utf-8", errors="replace")
    if "Input #0" not in stderr:
        raise MediaError(f"{path}: cannot be read as media (ffmpeg: {_last_line(stderr)})")
    media = _parse_probe(path, stderr)
    log.debug("probe %s: %s", path, media)
    return media


def decode_audio(source: Media | Path, ffmpeg: Path, sample_rate_hz: int = 16000) -> np.ndarray:
    """The first audio stream as mono float32 samples, resampled by ffmpeg.

    A truncated file decodes as far as it goes: if ffmpeg exits 0 the samples it wrote
    are returned (possibly fewer than the container duration promises).

    This is the one place that refuses a file without audio: every caller that needs
    speech gets the same ``NoAudioTrackError`` and message.

    Args:
        source: What ``probe`` returned for the file (the pipeline probes each file once
            and hands the result on), or the file's path, which is then probed here.
        ffmpeg: The ffmpeg executable.
        sample_rate_hz: Output rate.

    Returns:
        (N,) float32 in [-1, 1] at ``sample_rate_hz``.

    Raises:
        MediaError: The file is unreadable (see ``probe``) or ffmpeg failed before
            producing any samples.
        NoAudioTrackError: The file has no audio stream.
    """
    media = source if isinstance(source, Media) else probe(Path(source), ffmpeg)
    path = media.path
    if not media.has_audio:
        raise NoAudioTrackError(f"{path}: {NO_AUDIO_TRACK}")
    cmd = [
        str(ffmpeg), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        "-i", _input_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(int(sample_rate_hz)), "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as e:
        raise MediaError(f"{path}: could not run ffmpeg to decode audio: {e}") from e
    stderr = result.stderr.decode("utf-8", errors="replace")
    n_bytes = len(result.stdout) - len(result.stdout) % 4
    if result.returncode != 0:
        if n_bytes == 0:
            raise MediaError(f"{path}: audio could not be decoded (ffmpeg: {_last_line(stderr)})")
        log.warning("%s: audio decoding stopped early (ffmpeg: %s)", path, _last_line(stderr))
    elif stderr.strip():
        log.debug("%s: ffmpeg reported while decoding audio: %s", path, _last_line(stderr))
    audio = np.frombuffer(result.stdout[:n_bytes], dtype=np.float32).copy()
    np.clip(audio, -1.0, 1.0, out=audio)  # lossy codecs overshoot full scale slightly
    decoded_s = len(audio) / sample_rate_hz
    if media.duration_s - decoded_s > _SHORT_AUDIO_TOLERANCE_S:
        log.warning(
            "%s: decoded %.2f s of audio but the container says %.2f s (truncated file?%s)",
            path, decoded_s, media.duration_s, f" ffmpeg: {_last_line(stderr)}" if stderr.strip() else "",
        )
    return audio


def _output_size(media: Media, max_side_px: int) -> tuple[int, int]:
    """Frame (width, height) after scaling the displayed size down to ``max_side_px``."""
    if media.width is None or media.height is None:
        raise MediaError(f"{media.path}: video frame size unknown, cannot sample frames")
    scale = min(1.0, max_side_px / max(media.width, media.height))
    return max(1, round(media.width * scale)), max(1, round(media.height * scale))


def _read_into(stream: BinaryIO, array: np.ndarray) -> int:
    """Fill ``array`` from ``stream``; returns the bytes read (fewer only at end of stream)."""
    view = memoryview(array).cast("B")
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


def frame_count_estimate(media: Media, fps: float) -> int:
    """How many frames ``iter_frames`` will about yield (for progress bars); 0 without video."""
    if not media.has_video:
        return 0
    return max(0, round(media.duration_s * fps))


def iter_frames(media: Media, ffmpeg: Path, fps: float, max_side_px: int) -> Iterator[Frame]:
    """Stream frames sampled at ``fps`` through a pipe, one at a time.

    A generator on purpose, unlike the rest of the API: a long 1080p video sampled at
    5 fps is gigabytes of RGB, so frames must reach the face stage one by one and never
    be held all together. ffmpeg's ``fps`` filter resamples any frame rate (variable
    included) to a constant one, picking the source frame shown at each instant
    ``i / fps``; hence ``time_s = i / fps`` with no half-frame offset. Rotation metadata
    is applied by ffmpeg's autorotate, so frames come upright, as ``media`` describes.

    The ffmpeg process is killed and reaped when the generator is closed early, raises,
    or is garbage-collected.

    Args:
        media: What ``probe`` returned for the file.
        ffmpeg: The ffmpeg executable.
        fps: Frames per second to sample.
        max_side_px: Longest side of the frames; smaller videos keep their size.

    Yields:
        Frames with increasing ``time_s``, image (H, W, 3) uint8 RGB.

    Raises:
        NoVideoTrackError: ``media`` has no video stream.
        MediaError: ffmpeg failed before producing any frame.
    """
    if not media.has_video:
        raise NoVideoTrackError(f"{media.path}: no video track, so there are no frames to read")
    if fps <= 0 or max_side_px <= 0:
        raise ValueError(f"fps {fps} and max_side_px {max_side_px} must be positive")
    width, height = _output_size(media, max_side_px)
    frame_bytes = width * height * 3
    cmd = [
        str(ffmpeg), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        "-i", _input_url(media.path), "-map", "0:V:0", "-an", "-sn", "-dn",
        "-vf", f"fps={fps:g},scale={width}:{height}:flags=area,setsar=1",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    # stderr goes to a file, not a pipe: an unread pipe fills up on a corrupt video and
    # ffmpeg would block forever while we wait for frames.
    with tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_file)
        except OSError as e:
            raise MediaError(f"{media.path}: could not run ffmpeg to read frames: {e}") from e
        n_frames = 0
        try:
            assert proc.stdout is not None
            while True:
                image = np.empty((height, width, 3), dtype=np.uint8)  # a fresh, writable array per frame
                n_read = _read_into(proc.stdout, image)
                if n_read < frame_bytes:
                    if n_read:
                        log.debug("%s: dropped a partial last frame (%d bytes)", media.path, n_read)
                    break
                yield Frame(time_s=n_frames / fps, image=image)
                n_frames += 1
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if returncode != 0:
            err_file.seek(0)
            message = _last_line(err_file.read().decode("utf-8", errors="replace"))
            if n_frames == 0:
                raise MediaError(f"{media.path}: video could not be decoded (ffmpeg: {message})")
            log.warning("%s: video decoding stopped after %d frames (ffmpeg: %s)", media.path, n_frames, message)
