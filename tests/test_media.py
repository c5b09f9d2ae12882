"""extractors.media on media generated here with ffmpeg's lavfi sources (and one real clip).

Every test that runs ffmpeg is marked slow; parsing a stream listing is not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extractors.assets import resolve_ffmpeg
from extractors.errors import MediaError, NoAudioTrackError, NoVideoTrackError
from extractors.media import (
    NO_AUDIO_TRACK,
    SAMPLE_RATE_HZ,
    MediaOptions,
    _input_url,
    _parse_probe,
    _StderrTail,
    check_duration,
    decode_audio,
    frame_count_estimate,
    iter_frames,
    probe,
)
from storage.locations import shared_data_dir

MOSI_CLIP = shared_data_dir() / "mosi" / "clips" / "Oz06ZWiO20M_6.mp4"


@pytest.fixture(scope="module")
def ffmpeg() -> Path:
    return resolve_ffmpeg()


def _make(ffmpeg: Path, *args: str) -> None:
    subprocess.run([str(ffmpeg), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media_dir(ffmpeg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test file, made once: good media, odd media and broken media."""
    d = tmp_path_factory.mktemp("media")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    # 3 s, 320x240 at 25 fps with a 220 Hz tone; moov atom first so a truncated copy still opens.
    _make(ffmpeg, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
          "-f", "lavfi", "-i", "sine=frequency=220:duration=3:sample_rate=44100",
          *x264, "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(d / "av.mp4"))  # fmt: skip
    _make(ffmpeg, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", *x264, str(d / "noaudio.mp4"))
    # Left half red, right half blue; stored landscape, displayed rotated 90 degrees counter-clockwise.
    _make(ffmpeg, "-f", "lavfi", "-i", "color=c=red:size=160x240:rate=25:duration=2",
          "-f", "lavfi", "-i", "color=c=blue:size=160x240:rate=25:duration=2",
          "-filter_complex", "[0][1]hstack", *x264, str(d / "landscape.mp4"))  # fmt: skip
    _make(ffmpeg, "-display_rotation", "90", "-i", str(d / "landscape.mp4"), "-c", "copy", str(d / "rotated.mp4"))
    # Variable frame rate: red for 1.5 s at ~8 fps, then blue at 25 fps.
    _make(ffmpeg, "-f", "lavfi", "-i", "color=c=red:size=160x120:rate=25:duration=1.5",
          "-f", "lavfi", "-i", "color=c=blue:size=160x120:rate=25:duration=1.5",
          "-filter_complex", "[0][1]concat=n=2:v=1:a=0,select='gte(t\\,1.5)+not(mod(n\\,3))'",
          "-fps_mode", "vfr", *x264, str(d / "vfr.mkv"))  # fmt: skip
    _make(ffmpeg, "-f", "lavfi", "-i", "sine=frequency=220:duration=2:sample_rate=22050", str(d / "tone.wav"))
    # An mp3 with an embedded cover picture: audio only as far as we are concerned.
    _make(ffmpeg, "-f", "lavfi", "-i", "color=c=green:size=64x64", "-frames:v", "1", str(d / "cover.png"))
    _make(ffmpeg, "-f", "lavfi", "-i", "sine=frequency=220:duration=2", "-i", str(d / "cover.png"),
          "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy", "-disposition:v", "attached_pic",
          str(d / "cover.mp3"))  # fmt: skip
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 20)
    (d / "subtitles.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    (d / "folder.mp4").mkdir()
    full = (d / "av.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(full[: int(len(full) * 0.6)])
    (d / "header_only.mp4").write_bytes(full[:3000])
    return d


# --- probe ------------------------------------------------------------------------------


@pytest.mark.slow
def test_probe_video_with_audio(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "av.mp4", ffmpeg)
    assert media.duration_s == pytest.approx(3.0, abs=0.1)
    assert media.has_audio and media.has_video
    assert (media.width, media.height) == (320, 240)
    assert media.fps == pytest.approx(25.0)
    assert media.rotation_deg == 0
    assert media.video_codec == "h264" and media.audio_codec == "aac"
    assert media.audio_sample_rate_hz == 44100


@pytest.mark.slow
def test_probe_video_without_audio(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "noaudio.mp4", ffmpeg)
    assert media.has_video and not media.has_audio
    assert media.audio_codec is None and media.audio_sample_rate_hz is None
    assert media.duration_s == pytest.approx(3.0, abs=0.1)


@pytest.mark.slow
def test_colon_in_file_name_is_not_a_protocol(media_dir: Path, ffmpeg: Path) -> None:
    odd = media_dir / "take:2.mp4"
    odd.write_bytes((media_dir / "av.mp4").read_bytes())
    assert probe(odd, ffmpeg).duration_s == pytest.approx(3.0, abs=0.1)
    assert len(decode_audio(odd, ffmpeg)) == pytest.approx(3.0 * 16000, rel=0.01)


@pytest.mark.slow
def test_probe_wav(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "tone.wav", ffmpeg)
    assert media.has_audio and not media.has_video
    assert media.duration_s == pytest.approx(2.0, abs=0.1)
    assert media.audio_sample_rate_hz == 22050
    assert media.width is None and media.fps is None


@pytest.mark.slow
def test_probe_ignores_cover_picture(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "cover.mp3", ffmpeg)
    assert media.has_audio
    assert not media.has_video  # the PNG is an "(attached pic)", not a video
    assert media.width is None


@pytest.mark.slow
def test_probe_rotated_reports_displayed_size(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "rotated.mp4", ffmpeg)
    # -display_rotation 90 is counter-clockwise, i.e. 270 clockwise (the "rotate" tag's sense).
    assert media.rotation_deg == 270
    assert (media.width, media.height) == (240, 320)


def test_parse_legacy_rotate_tag_and_displaymatrix() -> None:
    # The listing an ffmpeg 4.x writes for a phone video (rotate tag plus lower-case side data).
    stderr = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 17000 kb/s
    Stream #0:0(eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 1920x1080, 16000 kb/s, 29.97 fps, 29.97 tbr, 90k tbn, 180k tbc (default)
    Metadata:
      rotate          : 90
      handler_name    : VideoHandle
    Side data:
      displaymatrix: rotation of -90.00 degrees
    Stream #0:1(eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 256 kb/s (default)
At least one output file must be specified
"""  # noqa: E501
    media = _parse_probe(Path("phone.mp4"), stderr)
    assert media.duration_s == pytest.approx(62.5)
    assert media.rotation_deg == 90
    assert (media.width, media.height) == (1080, 1920)
    assert media.fps == pytest.approx(29.97)
    assert media.audio_sample_rate_hz == 48000
    only_tag = stderr.replace("      displaymatrix: rotation of -90.00 degrees\n", "").replace("rotate          : 90",
                                                                                             "rotate          : 180")
    assert _parse_probe(Path("phone.mp4"), only_tag).rotation_deg == 180
    assert _parse_probe(Path("phone.mp4"), only_tag).width == 1920


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.mp4", "no such file"),
        ("folder.mp4", "directory"),
        ("empty.mp4", "0 bytes"),
        ("text.mp4", "Invalid data found when processing input"),
        ("header_only.mp4", "Invalid data found when processing input"),
        ("subtitles.srt", "no audio or video stream"),
    ],
)
def test_probe_rejects_bad_files_with_a_clear_message(media_dir: Path, ffmpeg: Path, name: str, message: str) -> None:
    with pytest.raises(MediaError) as info:
        probe(media_dir / name, ffmpeg)
    text = str(info.value)
    assert message in text
    assert name in text  # the user learns which file
    assert "\n" not in text  # one line for the CLI


# --- decode_audio ------------------------------------------------------------------------


@pytest.mark.slow
def test_decode_audio_is_mono_float_at_16k_and_holds_the_tone(media_dir: Path, ffmpeg: Path) -> None:
    audio = decode_audio(media_dir / "av.mp4", ffmpeg)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(3.0 * 16000, rel=0.01)
    assert np.abs(audio).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()]
    assert peak_hz == pytest.approx(220, abs=2)
    assert audio.flags.writeable


@pytest.mark.slow
def test_decode_audio_resamples_to_the_rate_asked(media_dir: Path, ffmpeg: Path) -> None:
    audio = decode_audio(media_dir / "tone.wav", ffmpeg, sample_rate_hz=8000)
    assert len(audio) == pytest.approx(2.0 * 8000, rel=0.01)


@pytest.mark.slow
def test_decode_audio_ignores_cover_picture(media_dir: Path, ffmpeg: Path) -> None:
    audio = decode_audio(media_dir / "cover.mp3", ffmpeg)
    assert len(audio) == pytest.approx(2.0 * 16000, rel=0.05)


@pytest.mark.slow
def test_decode_audio_without_audio_track(media_dir: Path, ffmpeg: Path) -> None:
    path = media_dir / "noaudio.mp4"
    with pytest.raises(NoAudioTrackError) as raised:
        decode_audio(path, ffmpeg)
    assert str(raised.value) == f"{path}: {NO_AUDIO_TRACK}"
    assert NO_AUDIO_TRACK == "no audio track, so there is nothing to hear or transcribe"  # README quotes it
    with pytest.raises(NoAudioTrackError) as from_media:
        decode_audio(probe(path, ffmpeg), ffmpeg)
    assert str(from_media.value) == str(raised.value)


@pytest.mark.slow
def test_decode_audio_of_probed_media_does_not_probe_again(
    media_dir: Path, ffmpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = probe(media_dir / "av.mp4", ffmpeg)

    def no_second_probe(*args: object) -> None:
        raise AssertionError("probed twice")

    monkeypatch.setattr("extractors.media.probe", no_second_probe)
    audio = decode_audio(media, ffmpeg)
    assert len(audio) == pytest.approx(3.0 * 16000, rel=0.01)


@pytest.mark.slow
def test_decode_audio_of_truncated_file_returns_what_it_can(
    media_dir: Path, ffmpeg: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="extractors.media"):
        audio = decode_audio(media_dir / "truncated.mp4", ffmpeg)
    assert 0 < len(audio) < 3.0 * 16000
    assert "but the container says 3.00 s (truncated file? ffmpeg: " in caplog.text  # ffmpeg saw data missing


@pytest.mark.slow
@pytest.mark.parametrize("name", ["empty.mp4", "text.mp4", "missing.wav"])
def test_decode_audio_of_bad_files(media_dir: Path, ffmpeg: Path, name: str) -> None:
    with pytest.raises(MediaError, match=name):
        decode_audio(media_dir / name, ffmpeg)


# --- iter_frames -------------------------------------------------------------------------


@pytest.mark.slow
def test_iter_frames_count_times_and_size(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "av.mp4", ffmpeg)
    options = MediaOptions()
    frames = list(iter_frames(media, ffmpeg, options.frame_fps, options.max_side_px))
    assert len(frames) == pytest.approx(3.0 * options.frame_fps, abs=1)
    assert len(frames) == pytest.approx(frame_count_estimate(media, options.frame_fps), abs=1)
    times = np.array([f.time_s for f in frames])
    assert np.all(np.diff(times) > 0)
    assert times == pytest.approx(np.arange(len(frames)) / options.frame_fps)
    for frame in frames:  # 320x240 is below 640: kept, never upscaled
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8


@pytest.mark.slow
def test_iter_frames_scales_the_longest_side_down(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "av.mp4", ffmpeg)
    frames = list(iter_frames(media, ffmpeg, fps=2.0, max_side_px=160))
    assert len(frames) == pytest.approx(6, abs=1)
    assert {f.image.shape for f in frames} == {(120, 160, 3)}
    # testsrc is colourful: real pixels came through, not a blank buffer
    assert frames[0].image.std() > 20


@pytest.mark.slow
def test_iter_frames_of_rotated_video_are_upright_portrait(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "rotated.mp4", ffmpeg)
    frames = list(iter_frames(media, ffmpeg, fps=5.0, max_side_px=160))
    assert len(frames) == pytest.approx(10, abs=1)
    image = frames[len(frames) // 2].image.astype(int)
    assert image.shape == (160, 120, 3)
    # Rotating 90 degrees counter-clockwise moves the stored right half (blue) to the top.
    top, bottom = image[: 60].mean(axis=(0, 1)), image[-60:].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60
    assert bottom[0] > 200 and bottom[2] < 60


@pytest.mark.slow
def test_iter_frames_of_variable_frame_rate_video(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "vfr.mkv", ffmpeg)
    frames = list(iter_frames(media, ffmpeg, fps=5.0, max_side_px=640))
    assert len(frames) == pytest.approx(15, abs=1)
    assert all(f.image.shape == (120, 160, 3) for f in frames)
    for frame in frames:  # each frame shows what was on screen at its time
        red, blue = frame.image[..., 0].mean(), frame.image[..., 2].mean()
        if frame.time_s < 1.3:
            assert red > 200 and blue < 60, frame.time_s
        elif frame.time_s > 1.7:
            assert blue > 200 and red < 60, frame.time_s


@pytest.mark.slow
def test_iter_frames_of_truncated_video_stops_early(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "truncated.mp4", ffmpeg)
    frames = list(iter_frames(media, ffmpeg, fps=5.0, max_side_px=640))
    assert 0 < len(frames) < 15


@pytest.mark.slow
def test_iter_frames_without_video_track(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "tone.wav", ffmpeg)
    assert frame_count_estimate(media, 5.0) == 0
    with pytest.raises(NoVideoTrackError):
        next(iter_frames(media, ffmpeg, fps=5.0, max_side_px=640))


def _ffmpeg_children() -> list[str]:
    """Child processes of this test process that run ffmpeg (zombies included)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            state, ppid = fields[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == os.getpid() and "ffmpeg" in name:
            found.append(f"{stat.parent.name} {name} {state}")
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to list child processes")
def test_iter_frames_leaves_no_ffmpeg_behind_when_closed_early(media_dir: Path, ffmpeg: Path) -> None:
    media = probe(media_dir / "av.mp4", ffmpeg)
    frames = iter_frames(media, ffmpeg, fps=25.0, max_side_px=640)
    next(frames)
    assert _ffmpeg_children(), "ffmpeg should still be running, blocked on the pipe"
    frames.close()
    assert _ffmpeg_children() == []

    def consume_and_fail() -> None:
        for _ in iter_frames(media, ffmpeg, fps=25.0, max_side_px=640):
            raise RuntimeError("consumer failed")

    with pytest.raises(RuntimeError):
        consume_and_fail()
    assert _ffmpeg_children() == []


@pytest.mark.slow
@pytest.mark.skipif(not MOSI_CLIP.exists(), reason=f"shared data not found at {MOSI_CLIP} (set MIAR_SHARED)")
def test_real_mosi_clip(ffmpeg: Path) -> None:
    media = probe(MOSI_CLIP, ffmpeg)
    assert media.duration_s == pytest.approx(7.5, abs=0.1)
    assert (media.width, media.height) == (480, 360) and media.has_audio
    audio = decode_audio(MOSI_CLIP, ffmpeg)
    assert len(audio) == pytest.approx(7.5 * 16000, rel=0.02)
    assert np.sqrt(np.mean(audio**2)) > 0.005  # speech, not silence
    frames = list(iter_frames(media, ffmpeg, fps=5.0, max_side_px=640))
    assert len(frames) == pytest.approx(frame_count_estimate(media, 5.0), abs=1)
    assert frames[0].image.shape == (360, 480, 3)


# --- hostile and careless input (issue 11) -------------------------------------------------


def test_probe_counts_audio_streams_and_reads_a_stream_duration_tag() -> None:
    # A Matroska listing: each stream carries its own DURATION tag; the audio ends first.
    stderr = """Input #0, matroska,webm, from 'two.mkv':
  Duration: 00:00:03.00, start: 0.000000, bitrate: 174 kb/s
  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(tv, progressive), 320x240, 25 fps, 25 tbr, 1k tbn
      Metadata:
        DURATION        : 00:00:03.000000000
  Stream #0:1(eng): Audio: aac (LC), 44100 Hz, mono, fltp
      Metadata:
        DURATION-eng    : 00:00:01.523000000
  Stream #0:2: Audio: opus, 48000 Hz, stereo, fltp
      Metadata:
        DURATION        : 00:00:02.900000000
"""
    media = _parse_probe(Path("two.mkv"), stderr)
    assert media.audio_stream_count == 2
    assert media.audio_duration_s == pytest.approx(1.523)  # the first audio stream's, not the video's
    assert media.audio_sample_rate_hz == 44100 and media.duration_s == pytest.approx(3.0)
    no_tags = "\n".join(line for line in stderr.splitlines() if "DURATION" not in line and "Metadata" not in line)
    assert _parse_probe(Path("two.mkv"), no_tags).audio_duration_s is None


def _refuse_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to start a process fail the test: a refusal must come first."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "run", no_process)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_fifo_and_devices_are_refused_before_ffmpeg_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block forever
    cases = [(fifo, "is not a regular file (FIFO)")]
    if Path("/dev/zero").exists():
        cases.append((Path("/dev/zero"), "is not a regular file (character device)"))
        link = tmp_path / "zero.wav"
        link.symlink_to("/dev/zero")
        cases.append((link, "is not a regular file (character device)"))
    _refuse_ffmpeg(monkeypatch)
    for path, message in cases:  # refused from a stat() alone: nothing is opened, ffmpeg never starts
        for call in (lambda: probe(path, Path("ffmpeg")), lambda: decode_audio(path, Path("ffmpeg"))):
            with pytest.raises(MediaError) as raised:
                call()
            text = str(raised.value)
            assert text.startswith(f"{path}: ") and message in text and "\n" not in text
            assert "empty" not in text


def test_dangling_symlink_is_no_such_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "gone.mp4"
    link.symlink_to(tmp_path / "nowhere.mp4")
    _refuse_ffmpeg(monkeypatch)
    with pytest.raises(MediaError, match="gone.mp4: no such file"):
        probe(link, Path("ffmpeg"))


def test_input_url_is_a_local_file_even_for_names_that_are_not_utf8() -> None:
    assert _input_url(Path("http:host/x.mp4")) == b"file:http:host/x.mp4"
    latin1 = Path(os.fsdecode(b"caf\xe9.mp4"))
    assert _input_url(latin1) == b"file:caf\xe9.mp4"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "with space.mp4",
        "ünïcødé 声音.mp4",
        "-y.mp4",  # looks like an ffmpeg option
        "-i",
        "http:example.com.mp4",  # looks like a protocol / URL
        "concat:av.mp4|av.mp4",
        "pipe:0",
        "quote'and\"dq;$(echo x).mp4",  # a shell would care; an argv list does not
        os.fsdecode(b"caf\xe9.mp4"),  # not UTF-8 (ffmpeg-python alone would fail on it)
    ],
)
def test_odd_file_names_are_read_as_local_files(media_dir: Path, ffmpeg: Path, name: str) -> None:
    odd = media_dir / "odd" / name
    odd.parent.mkdir(exist_ok=True)
    odd.write_bytes((media_dir / "av.mp4").read_bytes())
    media = probe(odd, ffmpeg)
    assert media.duration_s == pytest.approx(3.0, abs=0.1)
    assert len(decode_audio(media, ffmpeg)) == pytest.approx(3.0 * 16000, rel=0.01)
    frames = iter_frames(media, ffmpeg, fps=2.0, max_side_px=160)
    assert next(frames).image.shape == (120, 160, 3)
    frames.close()


@pytest.fixture(scope="module")
def day_long(ffmpeg: Path, media_dir: Path) -> Path:
    """24 hours of silence, audio only, compressed (FLAC in Matroska, about 1 MB, made in under a second).

    One hour is encoded, then copied 24 times over without re-encoding.
    """
    hour = media_dir / "silence_1h.flac"
    _make(ffmpeg, "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono:nb_samples=32768", "-t", "3600",
          "-c:a", "flac", "-compression_level", "0", str(hour))  # fmt: skip
    day = media_dir / "silence_24h.mka"
    _make(ffmpeg, "-stream_loop", "23", "-i", str(hour), "-c", "copy", str(day))
    return day


def test_max_duration_default_and_validation() -> None:
    from pipeline.config import PipelineConfig

    assert MediaOptions().max_duration_s == 6 * 3600
    assert PipelineConfig().with_overrides(max_duration_s=90.0).media.max_duration_s == 90.0
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="max_duration_s"):
            MediaOptions(max_duration_s=bad)


def test_one_sample_rate_for_every_stage() -> None:
    from extractors import transcript, voice, voice_states
    from pipeline.config import PipelineConfig

    assert MediaOptions().sample_rate_hz == SAMPLE_RATE_HZ == 16_000 == PipelineConfig().media.sample_rate_hz
    assert transcript.SAMPLE_RATE_HZ is voice.SAMPLE_RATE_HZ is voice_states.SAMPLE_RATE_HZ is SAMPLE_RATE_HZ
    with pytest.raises(ValueError, match=r"^MediaOptions.sample_rate_hz must be 16000 Hz .*got 44100$"):
        MediaOptions(sample_rate_hz=44_100)


@pytest.mark.slow
def test_a_day_long_file_is_refused_after_the_probe_before_decoding(
    day_long: Path, ffmpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded although the probe said it is too long")

    media = probe(day_long, ffmpeg)
    assert media.duration_s == pytest.approx(86400, abs=1)
    monkeypatch.setattr("extractors.media._decode_stream", no_decoding)
    with pytest.raises(MediaError) as raised:
        decode_audio(day_long, ffmpeg, max_duration_s=MediaOptions().max_duration_s)  # probes, then refuses
    assert str(raised.value) == (
        f"{day_long}: lasts 24:00:00 (86400 s), longer than the 21600 s limit (MediaOptions.max_duration_s)"
    )  # the limit it hit, not a command-line flag: the CLI adds its own
    with pytest.raises(MediaError, match="longer than the 21600 s limit"):
        check_duration(media, 21600)
    check_duration(media, float("inf"))  # no limit


@pytest.mark.slow
def test_featurize_refuses_a_too_long_file_before_any_stage(
    day_long: Path, ffmpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from pipeline.config import PipelineConfig
    from pipeline.features import featurize
    from pipeline.models import Models

    monkeypatch.setattr("extractors.media._decode_stream", lambda *args: pytest.fail("decoded"))
    untouchable = SimpleNamespace()  # any use of a model would raise AttributeError
    models = Models(ffmpeg=ffmpeg, transcriber=untouchable, face=untouchable, text_encoder=untouchable)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="longer than the 21600 s limit"):
        featurize(day_long, PipelineConfig(), models)
    config = PipelineConfig().with_overrides(max_duration_s=3600)
    with pytest.raises(MediaError, match="lasts 24:00:00 .* longer than the 3600 s limit"):
        featurize(day_long, config, models)


@pytest.mark.slow
def test_limit_holds_when_the_container_does_not_say_the_duration(media_dir: Path, ffmpeg: Path) -> None:
    unknown = dataclasses.replace(probe(media_dir / "av.mp4", ffmpeg), duration_s=0.0)
    assert len(decode_audio(unknown, ffmpeg, max_duration_s=10.0)) == pytest.approx(3.0 * 16000, rel=0.01)
    with pytest.raises(MediaError, match="decodes to more than 0:00:01 \\(1 s\\) of audio, the limit"):
        decode_audio(unknown, ffmpeg, max_duration_s=1.0)
    assert _ffmpeg_children() == []


#: Peak RSS of one decode_audio call in a fresh interpreter, over the RSS it had before decoding.
_MEASURE_DECODE = """
import resource, sys
from pathlib import Path
from extractors.media import decode_audio, probe
media = probe(Path(sys.argv[1]), Path(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
audio = decode_audio(media, Path(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(audio), audio.nbytes, (peak - before) * 1024)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_decode_audio_holds_an_hour_of_audio_once(ffmpeg: Path, media_dir: Path) -> None:
    # Before: bytes from the pipe plus a converted copy, about 2x the audio (444 MiB over for 1 h).
    hour = media_dir / "tone_1h.flac"
    _make(ffmpeg, "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=3600:samples_per_frame=16384",
          "-c:a", "flac", "-compression_level", "0", str(hour))  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _MEASURE_DECODE, str(hour), str(ffmpeg)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])  # fmt: skip
    n_samples, audio_bytes, grown_bytes = map(int, out.stdout.split())
    assert n_samples == 3600 * 16000
    assert grown_bytes < 1.1 * audio_bytes + 16 * 2**20, f"peak RSS grew {grown_bytes / 2**20:.0f} MiB"


@pytest.mark.slow
def test_audio_stream_shorter_than_the_video_is_not_called_truncated(
    ffmpeg: Path, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    for name in ("short_audio.mp4", "short_audio.mkv"):  # mp4: duration unknown per stream; mkv: tagged
        _make(ffmpeg, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3",
              "-f", "lavfi", "-i", "sine=frequency=220:duration=1.5:sample_rate=44100",
              *x264, "-c:a", "aac", str(media_dir / name))  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="extractors.media"):
        for name in ("short_audio.mp4", "short_audio.mkv"):
            audio = decode_audio(media_dir / name, ffmpeg)
            assert len(audio) == pytest.approx(1.5 * 16000, abs=0.05 * 16000)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "audio ends 1.50 s before the video" in caplog.text  # mp4: at debug level only

    # Real truncation still warns: a Matroska cut short (compared with its audio stream's own
    # duration) and a FLAC cut short (audio only: the container's duration is the audio's).
    full = (media_dir / "short_audio.mkv").read_bytes()
    (media_dir / "short_audio_cut.mkv").write_bytes(full[: int(len(full) * 0.4)])
    _make(ffmpeg, "-i", str(media_dir / "tone.wav"), "-c:a", "flac", str(media_dir / "tone.flac"))
    flac = (media_dir / "tone.flac").read_bytes()
    (media_dir / "tone_cut.flac").write_bytes(flac[: len(flac) // 2])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="extractors.media"):
        decode_audio(media_dir / "short_audio_cut.mkv", ffmpeg)
        decode_audio(media_dir / "tone_cut.flac", ffmpeg)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "but the audio stream says 1.52 s (truncated file?" in warnings[0]
    assert "tone_cut.flac: decoded " in warnings[1]
    assert " s of audio but the container says 2.00 s (truncated file?" in warnings[1]


def _peak_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()])


@pytest.mark.slow
def test_silent_first_audio_stream_gives_way_to_one_with_sound(
    ffmpeg: Path, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    silence = ("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo")
    tone = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100")
    video = ("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    # video + a muted track + a silent commentary track + the real sound
    _make(ffmpeg, *video, *silence, *silence, *tone, "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:a",
          *x264, "-c:a", "aac", "-t", "2", str(media_dir / "muted_first.mp4"))  # fmt: skip
    _make(ffmpeg, *tone, *silence, "-map", "0:a", "-map", "1:a", "-c:a", "flac", "-t", "2",
          str(media_dir / "sound_first.mka"))  # fmt: skip
    _make(ffmpeg, *silence, *silence, "-map", "0:a", "-map", "1:a", "-c:a", "flac", "-t", "2",
          str(media_dir / "all_silent.mka"))  # fmt: skip

    media = probe(media_dir / "muted_first.mp4", ffmpeg)
    assert media.audio_stream_count == 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="extractors.media"):
        audio = decode_audio(media, ffmpeg)
    assert _peak_hz(audio) == pytest.approx(440, abs=2)
    assert [r.getMessage() for r in caplog.records] == [
        f"{media.path}: audio stream 0 is silent; using audio stream 2 (of 3), the first with sound"
    ]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="extractors.media"):
        assert _peak_hz(decode_audio(media_dir / "sound_first.mka", ffmpeg)) == pytest.approx(440, abs=2)
        quiet = decode_audio(media_dir / "all_silent.mka", ffmpeg)
    assert len(quiet) == pytest.approx(2 * 16000, rel=0.01) and np.abs(quiet).max() < 1e-3
    assert caplog.records == []


def test_stderr_tail_drains_a_chatty_process_and_keeps_the_end() -> None:
    # 2 MB of stderr: with nobody reading, the process would block on a full pipe.
    chatty = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfor i in range(200000): sys.stderr.write(f'line {i}\\n')"],
        stderr=subprocess.PIPE,
    )
    assert chatty.stderr is not None
    tail = _StderrTail(chatty.stderr)
    assert chatty.wait(timeout=30) == 0
    lines = tail.text().splitlines()
    assert lines[-1] == "line 199999" and len(lines) == 20
