"""Bad and unusual inputs: every one gets a clear outcome, a batch never dies, nothing half-written.

One batch over a folder of generated cases (models loaded once) backs most tests; each
row of README's robustness table has a test here.
"""

from __future__ import annotations

import csv
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.output import UTTERANCE_COLUMNS
from storage.locations import shared_data_dir
from tests.conftest import requires_shared


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_valid_csv(path: Path) -> list[dict[str, str]]:
    rows = rows_of(path)
    assert path.read_text(encoding="utf-8").split("\n")[0] == ",".join(UTTERANCE_COLUMNS)
    for r in rows:
        assert -3.0 <= float(r["sentiment"]) <= 3.0 and r["text"].strip()
    return rows


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory, example_clip: Path, ffmpeg: Path) -> Path:
    """A folder with one file per case, made here from the example clip and ffmpeg sources."""
    folder = tmp_path_factory.mktemp("cases")

    def ff(*args: str) -> None:
        subprocess.run([str(ffmpeg), "-v", "error", "-y", *args], check=True)

    ex = str(example_clip)
    (folder / "not_media.mp4").write_text("hello, I am a text file\n")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(example_clip.read_bytes()[:300_000])
    (folder / "folder_named_like_a_video.mp4").mkdir()
    srt = folder / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    ff("-i", str(srt), str(folder / "subtitles_only.mkv"))
    srt.unlink()
    ff("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2", "-pix_fmt", "yuv420p",
       str(folder / "no_audio_track.mp4"))
    ff("-i", ex, "-vn", "-c:a", "pcm_s16le", str(folder / "audio_only.wav"))
    ff("-i", ex, "-vn", "-c:a", "aac", str(folder / "audio_only.m4a"))
    ff("-i", ex, "-f", "lavfi", "-i", "color=c=gray:s=320x240:r=25:d=16.4", "-map", "1:v", "-map", "0:a",
       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(folder / "no_face.mp4"))
    ff("-i", ex, "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-map", "0:v", "-map", "1:a", "-shortest",
       "-c:v", "copy", "-c:a", "aac", str(folder / "face_silence.mp4"))
    ff("-ss", "8.3", "-t", "0.6", "-i", ex, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
       str(folder / "one_short_word.mp4"))
    ff("-t", "6", "-i", ex, "-vf", "scale=3840:2160", "-c:v", "libx264", "-preset", "ultrafast",
       "-pix_fmt", "yuv420p", "-c:a", "aac", str(folder / "frames_4k.mp4"))
    ff("-display_rotation", "90", "-i", ex, "-c", "copy", str(folder / "rotated_phone.mp4"))
    ff("-i", ex, "-vf", r"select='lt(mod(n\,25)\,5)+between(n\,100\,200)'", "-fps_mode", "vfr",
       "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", str(folder / "variable_rate.mkv"))
    shutil.copy(example_clip, folder / "-dash ünïcode name.mp4")
    german = shared_data_dir() / "emodb" / "wav" / "03a01Fa.wav"
    if german.exists():
        shutil.copy(german, folder / "german_speech.wav")
    return folder


@pytest.fixture(scope="module")
def batch(cases: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, dict[str, dict[str, str]]]:
    out = tmp_path_factory.mktemp("cases-out")
    code = main(["run", str(cases), "--out", str(out), "--no-progress"])
    summary = {Path(r["video"]).name: r for r in rows_of(out / "summary.csv")}
    return code, out, summary


@pytest.mark.slow
def test_batch_lists_every_input_and_exit_code_reports_failures(batch, cases: Path):
    code, out, summary = batch
    assert code == 1
    assert set(summary) == {p.name for p in cases.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".summary.lock"], \
        "temporary files left behind"


@pytest.mark.parametrize("name,reason", [
    ("not_media.mp4", "cannot be read as media"),
    ("empty.mp4", "empty"),
    ("folder_named_like_a_video.mp4", "is a directory"),
    ("subtitles_only.mkv", "no audio or video stream"),
    ("no_audio_track.mp4", "no audio track"),
])
@pytest.mark.slow
def test_unreadable_inputs_fail_with_reason_and_no_csv(batch, name: str, reason: str):
    _, out, summary = batch
    row = summary[name]
    assert row["status"] == "failed" and reason in row["error"] and name in row["error"]
    assert not (out / f"{Path(name).stem}.csv").exists()


@pytest.mark.slow
def test_truncated_file_scores_what_can_be_decoded(batch):
    _, out, summary = batch
    assert summary["truncated.mp4"]["status"] == "ok"
    rows = assert_valid_csv(out / "truncated.csv")
    assert 1 <= len(rows) < 3 and float(rows[-1]["end_s"]) < 8.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["audio_only.wav", "audio_only.m4a"])
def test_audio_only_is_scored_without_the_face(batch, name: str):
    _, out, summary = batch
    assert summary[name]["status"] == "ok" and summary[name]["face_coverage"] == ""
    # two inputs with the stem audio_only: each keeps its extension in its output name (summary's csv column)
    assert summary[name]["csv"] == str(out / f"{name}.csv")
    rows = assert_valid_csv(out / f"{name}.csv")
    assert len(rows) == 3 and all(r["face_coverage"] == "" and r["face_score"] == "" and r["voice_score"] for r in rows)
    assert float(rows[0]["sentiment"]) > 0 > float(rows[1]["sentiment"])


@pytest.mark.slow
def test_speech_without_a_face_is_scored_with_face_masked(batch):
    _, out, summary = batch
    rows = assert_valid_csv(out / "no_face.csv")
    assert len(rows) == 3 and all(float(r["face_coverage"]) == 0.0 for r in rows)
    assert all(r["smile"] == "" and r["face_score"] == "" for r in rows)  # masked, not invented


@pytest.mark.slow
def test_face_with_silence_gives_no_rows_and_a_status(batch):
    _, out, summary = batch
    assert summary["face_silence.mp4"]["status"] == "no_speech"
    assert assert_valid_csv(out / "face_silence.csv") == []


@pytest.mark.slow
def test_a_single_short_word_does_not_break_anything(batch):
    _, out, summary = batch
    assert summary["one_short_word.mp4"]["status"] in ("ok", "no_speech")
    for r in assert_valid_csv(out / "one_short_word.csv"):
        assert float(r["start_s"]) <= float(r["end_s"]) <= 0.7


@pytest.mark.slow
@pytest.mark.parametrize("name", ["frames_4k.mp4", "rotated_phone.mp4", "variable_rate.mkv", "-dash ünïcode name.mp4"])
def test_unusual_video_still_finds_face_and_words(batch, name: str):
    _, out, summary = batch
    assert summary[name]["status"] == "ok", summary[name]["error"]
    rows = assert_valid_csv(out / f"{Path(name).stem}.csv")
    assert rows and all(float(r["face_coverage"]) > 0.9 for r in rows)
    assert "loved" in rows[0]["text"]


@pytest.mark.slow
@requires_shared
def test_non_english_speech_is_identified_and_not_scored(batch):
    _, out, summary = batch
    row = summary["german_speech.wav"]
    assert row["status"] == "failed" and "'de'" in row["error"] and "English only" in row["error"]
    assert not (out / "german_speech.csv").exists()


def test_unwritable_output_folder_fails_before_any_work(tmp_path: Path, example_clip: Path, no_model_loads: None,
                                                       caplog: pytest.LogCaptureFixture):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["run", str(example_clip), "--out", str(blocker / "out"), "--no-progress"]) == 1  # no model loaded
    assert f"output folder {blocker / 'out'} cannot be made: {blocker} is a file, not a folder" in caplog.text


@pytest.mark.slow
def test_leading_dash_name_after_double_dash(tmp_path: Path, example_clip: Path, repo_root: Path):
    shutil.copy(example_clip, tmp_path / "-clip.mp4")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--out", str(tmp_path / "o"), "--no-progress",
                           "--", "-clip.mp4"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(assert_valid_csv(tmp_path / "o" / "-clip.csv")) == 3


@pytest.mark.slow
def test_ctrl_c_keeps_finished_csvs_and_skip_existing_resumes(tmp_path: Path, example_clip: Path, repo_root: Path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(6):
        shutil.copy(example_clip, videos / f"clip{i}.mp4")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline", "run", str(videos), "--out", str(out), "--no-progress"]
    # SIG_DFL in the child: a test run started in the background inherits SIGINT ignored
    proc = subprocess.Popen(cmd, cwd=repo_root, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out / "clip1.csv").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    done = sorted(p.name for p in out.glob("clip*.csv"))
    assert 2 <= len(done) < 6
    for name in done:  # every CSV there is complete
        assert len(assert_valid_csv(out / name)) == 3
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".summary.lock"]
    before = {name: (out / name).stat().st_mtime_ns for name in done}

    assert main(["run", str(videos), "--out", str(out), "--skip-existing", "--no-progress"]) == 0
    summary = {Path(r["video"]).name: r["status"] for r in rows_of(out / "summary.csv")}
    assert sorted(v for v in summary.values()) == sorted(["skipped"] * len(done) + ["ok"] * (6 - len(done)))
    assert {name: (out / name).stat().st_mtime_ns for name in done} == before  # not redone
    names = sorted(p.name for p in out.glob("clip*.csv"))
    texts = {name: [r["sentiment"] for r in rows_of(out / name)] for name in names}
    assert len(texts) == 6
    assert len(set(map(tuple, texts.values()))) == 1  # resumed results equal the first ones


@pytest.mark.slow
def test_fuzzed_copies_of_the_example_never_crash(tmp_path: Path, example_clip: Path):
    data = example_clip.read_bytes()
    rng = random.Random(1234)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for i in range(8):
        flipped = bytearray(data)
        for _ in range(rng.choice([1, 10, 100, 1000])):
            pos = rng.randrange(len(flipped))
            flipped[pos] = rng.randrange(256)
        (folder / f"fuzz{i}.mp4").write_bytes(bytes(flipped))
    out = tmp_path / "out"
    code = main(["run", str(folder), "--out", str(out), "--no-progress"])  # an unexpected exception fails the test
    assert code in (0, 1)
    summary = rows_of(out / "summary.csv")
    assert len(summary) == 8
    for r in summary:
        assert r["status"] in ("ok", "no_speech", "failed")
        csv_path = out / f"{Path(r['video']).stem}.csv"
        if r["status"] == "failed":
            assert r["error"] and not csv_path.exists()
        else:
            assert_valid_csv(csv_path)


@pytest.mark.slow
def test_one_hour_video_memory_stays_bounded(tmp_path: Path, ffmpeg: Path, repo_root: Path):
    hour = tmp_path / "hour.mp4"
    subprocess.run([str(ffmpeg), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=160x120:r=1:d=3600",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=3600", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", "-shortest",
                    str(hour)], check=True)
    probe = ("import resource, sys; from pipeline.cli import main; code = main(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); raise SystemExit(code)")
    proc = subprocess.run([sys.executable, "-c", probe, "run", str(hour), "--out", str(tmp_path / "o"),
                           "--no-progress"], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_gb = int(proc.stdout.split()[-1]) / 2**20
    # Typically 1.7-1.9 GB (models ~1.4 GB + the hour's audio); once 3.01 GB in a loaded CI-like run, cause
    # not found. Holding the hour's frames (13 GB at 4 fps) or its spectrogram at once would blow far past this.
    assert peak_gb < 3.5, f"peak RSS {peak_gb:.2f} GB for a one-hour input"
    assert (tmp_path / "o" / "hour.csv").exists()
