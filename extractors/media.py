"""Read media files with the ffmpeg binary: what is inside, the audio samples, sampled frames.

Only the ``ffmpeg`` executable is used (imageio-ffmpeg ships it; ``extractors.assets.resolve_ffmpeg``).
Decoding audio and streaming frames are ffmpeg graphs built with ffmpeg-python
(``ffmpeg.input(...)[stream].filter(...).output("pipe:", ...)``) and started with its
``run_async(cmd=<that binary>)``; samples and raw RGB come back through a pipe, which keeps
decoding in ffmpeg (every container and codec it knows, variable frame rate, rotation) and
out of Python. ``probe`` is our own: ffmpeg-python's ``probe`` runs ``ffprobe``, which we do
not ship, so we read the stream listing that ``ffmpeg -hide_banner -i FILE`` writes to
stderr (a command without an output, which an ffmpeg-python graph cannot express).

Input names reach ffmpeg as one argv element each (a list, never a shell), so spaces,
quotes, ``;`` or a leading dash need no quoting; they are given as ``file:<path>`` bytes
(``_input_url``) so that names like ``take:2.mp4``, ``http:x``, ``concat:a|b`` or
``pipe:0`` stay local files, and names that are not UTF-8 still work (ffmpeg-python hashes
its arguments as UTF-8 text and would fail on them).

What is refused before ffmpeg starts: a missing path, a directory, anything that is not a
regular file (a FIFO would block the read forever, ``/dev/zero`` never ends), an empty
file; and, when the caller sets a limit, media longer than ``max_duration_s``.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import ffmpeg as ffmpeg_python
import numpy as np

from extractors.errors import MediaError, NoAudioTrackError, NoVideoTrackError
from extractors.records import Frame, Media

__all__ = [
    "SAMPLE_RATE_HZ", "MediaOptions", "NO_AUDIO_TRACK", "probe", "check_duration", "decode_audio", "iter_frames",
    "frame_count_estimate",
]  # fmt: skip

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
# A stream's own duration, in its metadata: Matroska/WebM writers record it ("DURATION-eng" too).
_STREAM_DURATION_TAG = re.compile(r"^\s*DURATION(?:-\w+)?\s*:\s*(\d+):(\d+):(\d+(?:\.\d+)?)\s*$")

#: The pipeline's one audio rate, mono: Whisper consumes 16 kHz, and the voice descriptors were
#: tuned and trained on it. Every stage that reads decoded audio reads it at this rate.
SAMPLE_RATE_HZ = 16_000
#: Seconds allowed for ``probe`` (it reads headers only; a stuck network mount should not hang a batch).
_PROBE_TIMEOUT_S = 60.0
#: What a user reads when a file holds no audio stream (after the file's name).
NO_AUDIO_TRACK = "no audio track, so there is nothing to hear or transcribe"
#: Decoded audio this much shorter than the audio stream's duration is worth a warning.
_SHORT_AUDIO_TOLERANCE_S = 0.5
#: An audio stream whose every sample is below this (-60 dBFS) is silent: with several
#: audio streams, a silent first one gives way to the first stream with sound.
_SILENT_PEAK = 10 ** (-60 / 20)
#: Bytes asked of ffmpeg's pipe per read (the audio limit is checked between reads).
_READ_CHUNK_BYTES = 1 << 22
#: Global options of every decoding graph: never read our stdin, errors only on stderr.
_QUIET = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error")
#: ffmpeg stderr lines kept for messages (a corrupt file can log one per packet).
_STDERR_LINES_KEPT = 20


@dataclass(frozen=True)
class MediaOptions:
    """How media is decoded for the feature extractors.

    Attributes:
        sample_rate_hz: Audio is resampled to this rate, mono. Only ``SAMPLE_RATE_HZ``
            (16 kHz) is accepted: it is what Whisper consumes, it covers the voice band that
            the voice descriptors look at, and the weights were trained on features made at it.
        frame_fps: Video frames sampled per second. 4 fps because facial expressions
            change over hundreds of milliseconds (a 250 ms step misses little; a word's
            interval takes the nearest frame when it holds none), while the face stage costs
            about 12 ms per frame on our CPU and runs beside speech recognition: on a
            10-minute video, 4 fps instead of 5 cut the whole pipeline by about 10%
            (bench/speed.py), bringing it within 1.6x of Whisper alone.
        max_side_px: Frames are scaled down (never up) so that their longest side is at
            most this; 640 px keeps a talking face well over the landmarker's input size
            while capping the cost of decoding and copying 1080p or 4K frames.
        max_duration_s: Longer media is refused right after the probe, before anything is
            decoded (and while decoding, when the container does not say how long it is).
            The audio is held once, whole, as float32 (Whisper and the voice descriptors read
            all of it): 6 h (the default) is 1.4 GB at 16 kHz. ``math.inf`` removes the limit.
    """

    sample_rate_hz: int = SAMPLE_RATE_HZ
    frame_fps: float = 4.0
    max_side_px: int = 640
    max_duration_s: float = 6 * 3600.0

    def __post_init__(self) -> None:
        if self.sample_rate_hz != SAMPLE_RATE_HZ:
            raise ValueError(f"MediaOptions.sample_rate_hz must be {SAMPLE_RATE_HZ} Hz (what Whisper and the voice "
                             f"descriptors read), got {self.sample_rate_hz}")
        if not self.max_duration_s > 0:  # also refuses NaN
            raise ValueError(f"MediaOptions.max_duration_s must be > 0 seconds, got {self.max_duration_s}")


_FILE_KINDS = (
    (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)  # fmt: skip


def _check_file(path: Path) -> None:
    """Reject what ffmpeg would reject (or hang on) anyway, with a message a user understands.

    Only a regular file reaches ffmpeg: reading a FIFO blocks until someone writes to it,
    and a device such as ``/dev/zero`` never ends.
    """
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError) as e:
        raise MediaError(f"{path}: no such file") from e
    except OSError as e:
        raise MediaError(f"{path}: cannot be read ({e.strerror or e})") from e
    if stat.S_ISDIR(info.st_mode):
        raise MediaError(f"{path}: is a directory, not a media file")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "special file")
        raise MediaError(f"{path}: is not a regular file ({kind}), so it is not read as media")
    if info.st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")


def _input_url(path: Path) -> bytes:
    """The path as an ffmpeg input that is always a local file.

    Without the ``file:`` prefix, a name such as ``take:2.mp4`` would be read as a
    protocol ("take") and fail with a baffling error (``http:``, ``concat:``, ``pipe:``
    would open something else than the file). Bytes, not text: a file name that is not
    UTF-8 reaches ffmpeg unchanged (subprocess passes bytes through; ffmpeg-python's node
    hashing would fail on the surrogates Python uses for such names).
    """
    return b"file:" + os.fsencode(path)


def _hms(seconds: float) -> str:
    """``5025.4`` -> ``"1:23:45"``."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


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
    audio_streams = 0
    audio_duration_s: float | None = None
    rotation_from_matrix: float | None = None
    rotation_from_tag: float | None = None
    section: str | None = None  # "video"/"audio": the lines after our chosen stream (side data, metadata)
    for line in stderr.splitlines():
        if line.startswith(("Input #", "Output #", "Stream mapping")) and not line.startswith("Input #0"):
            break
        stream = _STREAM.match(line)
        if stream:
            kind, desc = stream.groups()
            section = None
            if kind == "Video" and video is None and "(attached pic)" not in desc:
                video, section = desc, "video"
            elif kind == "Audio":
                audio_streams += 1
                if audio is None:
                    audio, section = desc, "audio"
            continue
        if section == "video":
            if (m := _DISPLAY_MATRIX.search(line)) and rotation_from_matrix is None:
                rotation_from_matrix = float(m.group(1))
            elif (m := _ROTATE_TAG.match(line)) and rotation_from_tag is None:
                rotation_from_tag = float(m.group(1))
        elif section == "audio" and (m := _STREAM_DURATION_TAG.match(line)) and audio_duration_s is None:
            audio_duration_s = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))

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
        audio_stream_count=audio_streams,
        audio_duration_s=audio_duration_s,
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
        MediaError: The file is missing, a directory, not a regular file (FIFO, device),
            empty, not media ffmpeg can read, or has neither an audio nor a video stream.
            The message keeps ffmpeg's last stderr line.
    """
    path = Path(path)
    _check_file(path)
    # ffmpeg-python cannot express a command without an output (and its probe needs ffprobe).
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


def check_duration(media: Media, max_duration_s: float) -> None:
    """Refuse media longer than ``max_duration_s`` (call it right after ``probe``).

    Raises:
        MediaError: ``media.duration_s`` exceeds the limit; one line naming the file, its
            duration and the limit it hit (a command line adds its own flag for raising it).
    """
    if media.duration_s > max_duration_s:
        raise MediaError(
            f"{media.path}: lasts {_hms(media.duration_s)} ({media.duration_s:.0f} s), longer than the "
            f"{max_duration_s:g} s limit (MediaOptions.max_duration_s)"
        )


def decode_audio(
    source: Media | Path, ffmpeg: Path, sample_rate_hz: int = SAMPLE_RATE_HZ, *, max_duration_s: float | None = None
) -> np.ndarray:
    """The first audio stream with sound, as mono float32 samples resampled by ffmpeg.

    That is audio stream 0 unless it is silent (no sample above -60 dBFS) and the file
    holds more: then the next streams are decoded in turn and the first with sound is
    used, with a warning naming both (a recording whose first track is a muted
    microphone). Costs nothing for the usual single-stream file.

    Memory: ffmpeg's output is read straight into one float32 array sized from the
    probed duration (grown in place when the file holds more), so the audio is held once.

    A truncated file decodes as far as it goes: if ffmpeg exits 0 the samples it wrote
    are returned, with a warning when they fall short of the audio stream's duration
    (known from a Matroska per-stream tag, or the container's duration for a file without
    video); in a video whose audio stream's own duration is unknown, a shortfall is only
    warned about when ffmpeg reported an error, since an audio track that simply ends
    before the picture is ordinary.

    This is the one place that refuses a file without audio: every caller that needs
    speech gets the same ``NoAudioTrackError`` and message.

    Args:
        source: What ``probe`` returned for the file (the pipeline probes each file once
            and hands the result on), or the file's path, which is then probed here.
        ffmpeg: The ffmpeg executable.
        sample_rate_hz: Output rate.
        max_duration_s: Refuse media longer than this: before decoding when the probe
            knows the duration (``check_duration``), else as soon as the decoded audio
            exceeds it. None: no limit.

    Returns:
        (N,) float32 in [-1, 1] at ``sample_rate_hz``.

    Raises:
        MediaError: The file is unreadable (see ``probe``), longer than ``max_duration_s``,
            or ffmpeg failed before producing any samples.
        NoAudioTrackError: The file has no audio stream.
    """
    media = source if isinstance(source, Media) else probe(Path(source), ffmpeg)
    path = media.path
    if not media.has_audio:
        raise NoAudioTrackError(f"{path}: {NO_AUDIO_TRACK}")
    if max_duration_s is not None:
        check_duration(media, max_duration_s)
    audio = _decode_stream(media, ffmpeg, sample_rate_hz, 0, max_duration_s)
    n_streams = max(1, media.audio_stream_count)
    if n_streams > 1 and _is_silent(audio):
        del audio  # held once: the next stream is decoded in its place
        for index in range(1, n_streams):
            audio = _decode_stream(media, ffmpeg, sample_rate_hz, index, max_duration_s)
            if not _is_silent(audio):
                log.warning("%s: audio stream 0 is silent; using audio stream %d (of %d), the first with sound",
                            path, index, n_streams)
                return audio
            del audio
        log.info("%s: all %d audio streams are silent; using audio stream 0", path, n_streams)
        audio = _decode_stream(media, ffmpeg, sample_rate_hz, 0, max_duration_s)
    return audio


def _is_silent(audio: np.ndarray) -> bool:
    """No sample above ``_SILENT_PEAK`` (max and min: no temporary copy of a long array)."""
    return audio.size == 0 or max(float(audio.max()), -float(audio.min())) < _SILENT_PEAK


def _decode_stream(
    media: Media, ffmpeg: Path, sample_rate_hz: int, index: int, max_duration_s: float | None
) -> np.ndarray:
    """Audio stream ``index`` (among the audio streams) of ``media``, see ``decode_audio``."""
    path = media.path
    rate = int(sample_rate_hz)
    graph = ffmpeg_python.input(_input_url(path))[f"a:{index}"].output(
        "pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=rate, vn=None, sn=None, dn=None
    )
    max_samples = None if max_duration_s is None or np.isinf(max_duration_s) else int(max_duration_s * rate)
    expected_s = media.audio_duration_s if media.audio_duration_s is not None else media.duration_s
    capacity = int(expected_s * rate) + rate  # 1 s over: rounding, the resampler's tail
    if max_samples is not None:
        capacity = min(capacity, max_samples + rate)
    samples = np.empty(capacity, dtype=np.float32)  # pages are touched only as ffmpeg fills them
    proc, stderr = _start(graph, ffmpeg, path, "decode audio")
    filled = 0  # bytes
    try:
        assert proc.stdout is not None
        while True:
            if filled == samples.nbytes:  # the file holds more than its header said
                samples.resize(samples.size + max(samples.size // 2, 60 * rate), refcheck=False)
            n = _read_chunk(proc.stdout, samples, filled)
            if not n:
                break
            filled += n
            if max_samples is not None and filled // 4 > max_samples:
                raise MediaError(
                    f"{path}: decodes to more than {_hms(max_duration_s or 0)} ({max_duration_s:g} s) of audio, "
                    f"the limit (MediaOptions.max_duration_s)"
                )
        returncode = proc.wait()
    finally:
        _stop(proc)
    n_samples = filled // 4
    samples.resize(n_samples, refcheck=False)  # in place: shrinking never copies
    message = stderr.text()
    if returncode != 0:
        if n_samples == 0:
            raise MediaError(f"{path}: audio could not be decoded (ffmpeg: {_last_line(message)})")
        log.warning("%s: audio decoding stopped early (ffmpeg: %s)", path, _last_line(message))
    elif message.strip():
        log.debug("%s: ffmpeg reported while decoding audio: %s", path, _last_line(message))
    np.clip(samples, -1.0, 1.0, out=samples)  # lossy codecs overshoot full scale slightly
    _warn_if_short(media, n_samples / rate, message, index)
    return samples


def _warn_if_short(media: Media, decoded_s: float, stderr: str, index: int) -> None:
    """Warn when the decoded audio falls short of what the file promises (truncation)."""
    said = f" ffmpeg: {_last_line(stderr)}" if stderr.strip() else ""
    if index == 0 and media.audio_duration_s is not None:
        expected_s, what = media.audio_duration_s, "audio stream"
    else:
        expected_s, what = media.duration_s, "container"
    if expected_s - decoded_s <= _SHORT_AUDIO_TOLERANCE_S:
        return
    if what == "container" and media.has_video and not said:
        # The container's duration is its longest stream's: an audio track that ends
        # before the picture decodes cleanly and short. ffmpeg says so when data is missing.
        log.debug("%s: audio ends %.2f s before the video", media.path, expected_s - decoded_s)
        return
    log.warning("%s: decoded %.2f s of audio but the %s says %.2f s (truncated file?%s)",
                media.path, decoded_s, what, expected_s, said)


def _read_chunk(stream: BinaryIO, samples: np.ndarray, offset: int) -> int:
    """Read up to ``_READ_CHUNK_BYTES`` from ``stream`` into ``samples`` at byte ``offset``.

    Every view is released on return, so that ``samples.resize`` can work in place.
    """
    with memoryview(samples) as whole, whole.cast("B") as raw, raw[offset: offset + _READ_CHUNK_BYTES] as part:
        return stream.readinto(part) or 0


class _StderrTail:
    """Drain an ffmpeg's stderr on a thread, keeping its last lines.

    A pipe that nobody reads fills up (64 KiB) on a corrupt file that logs an error per
    packet; ffmpeg would then block while we wait on its stdout. Lines are read in
    bounded pieces and only the last few are kept, so memory stays flat too.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: deque[bytes] = deque(maxlen=_STDERR_LINES_KEPT)
        self._thread = threading.Thread(target=self._drain, args=(stream,), name="ffmpeg-stderr", daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        with stream:
            for line in iter(lambda: stream.readline(4096), b""):
                self._lines.append(line)

    def text(self) -> str:
        """What was kept, once ffmpeg has closed its stderr (call after the process ended)."""
        self._thread.join()
        return b"".join(self._lines).decode("utf-8", errors="replace")


def _start(graph: ffmpeg_python.nodes.OutputStream, ffmpeg: Path, path: Path, what: str
           ) -> tuple[subprocess.Popen[bytes], _StderrTail]:
    """Run an ffmpeg-python graph with our binary, stdout piped to us, stderr drained."""
    try:
        proc = graph.global_args(*_QUIET).run_async(cmd=str(ffmpeg), pipe_stdout=True, pipe_stderr=True)
    except OSError as e:
        raise MediaError(f"{path}: could not run ffmpeg to {what}: {e}") from e
    assert proc.stderr is not None
    return proc, _StderrTail(proc.stderr)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ffmpeg if it still runs (we stopped reading early), reap it, close our pipe end."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


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
    graph = (
        ffmpeg_python.input(_input_url(media.path))["V:0"]
        .filter("fps", fps=f"{fps:g}")
        .filter("scale", width, height, flags="area")
        .filter("setsar", 1)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", an=None, sn=None, dn=None)
    )
    proc, stderr = _start(graph, ffmpeg, media.path, "read frames")
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
        _stop(proc)
    if returncode != 0:
        message = _last_line(stderr.text())
        if n_frames == 0:
            raise MediaError(f"{media.path}: video could not be decoded (ffmpeg: {message})")
        log.warning("%s: video decoding stopped after %d frames (ffmpeg: %s)", media.path, n_frames, message)
