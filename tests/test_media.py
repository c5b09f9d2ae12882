"""extractors.media on media generated here with ffmpeg's lavfi sources (and one real clip).

Every test that runs ffmpeg is marked slow; parsing a stream listing is not.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from extractors.assets import resolve_ffmpeg
from extractors.errors import MediaError, NoAudioTrackError, NoVideoTrackError
from extractors.media import (
    NO_AUDIO_TRACK,
    MediaOptions,
    _parse_probe,
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
def test_decode_audio_of_truncated_file_returns_what_it_can(media_dir: Path, ffmpeg: Path) -> None:
    audio = decode_audio(media_dir / "truncated.mp4", ffmpeg)
    assert 0 < len(audio) < 3.0 * 16000


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
