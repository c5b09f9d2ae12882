"""End to end: the CLI on real media, its files, its exit codes and its messages."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from bench.wer import word_error_rate
from pipeline.cli import main
from pipeline.output import SUMMARY_COLUMNS, UTTERANCE_COLUMNS
from tests.conftest import requires_shared

pytestmark = pytest.mark.slow


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_schema(rows: list[dict[str, str]]) -> None:
    for row in rows:
        assert tuple(row) == UTTERANCE_COLUMNS
        assert -3.0 <= float(row["sentiment"]) <= 3.0
        assert row["polarity"] in ("negative", "neutral", "positive")
        assert 0.0 <= float(row["start_s"]) <= float(row["end_s"])
        assert 0.0 <= float(row["face_coverage"]) <= 1.0
        assert int(row["n_words"]) == len(row["text"].split())


@pytest.fixture(scope="module")
def example_out(tmp_path_factory: pytest.TempPathFactory, example_clip: Path) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("example-out")
    return main(["run", str(example_clip), "--out", str(out), "--no-progress"]), out


def test_example_clip_rows_and_sentiment(example_out: tuple[int, Path], repo_root: Path):
    code, out = example_out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["example.csv"]  # single video: no summary, no temp files
    rows = read_rows(out / "example.csv")
    check_schema(rows)
    sentences = (repo_root / "examples" / "sentences.txt").read_text().strip().split("\n")
    assert len(rows) == len(sentences) == 3
    for row, sentence in zip(rows, sentences):
        assert word_error_rate(sentence, row["text"]) <= 0.2
        assert float(row["face_coverage"]) > 0.9
        assert float(row["voiced_share"]) > 0.2
    assert float(rows[0]["sentiment"]) > 0.5, "'I loved this film ... wonderful ... beautiful' must be positive"
    assert float(rows[1]["sentiment"]) < -0.5, "'the ending was terrible ... I hated' must be negative"
    assert float(rows[0]["end_s"]) < float(rows[1]["start_s"]) < float(rows[2]["start_s"])


def test_example_matches_shipped_expected_output(example_out: tuple[int, Path], repo_root: Path):
    """examples/expected/example.csv is what README shows; a change in any stage shows up here."""
    expected = read_rows(repo_root / "examples" / "expected" / "example.csv")
    got = read_rows(example_out[1] / "example.csv")
    assert [r["text"] for r in got] == [r["text"] for r in expected]
    for g, e in zip(got, expected):
        assert float(g["sentiment"]) == pytest.approx(float(e["sentiment"]), abs=0.05)
        assert g["polarity"] == e["polarity"]


@requires_shared
def test_grid_folder_batch(tmp_path: Path, shared: Path):
    grid = shared / "data" / "clips" / "grid"
    code = main(["run", str(grid), "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    csvs = sorted(p.name for p in tmp_path.glob("*.csv") if p.name != "summary.csv")
    assert csvs == sorted(p.stem + ".csv" for p in grid.glob("*.mpg"))
    summary = read_rows(tmp_path / "summary.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    assert [r["status"] for r in summary] == ["ok"] * 10
    for name in csvs:
        rows = read_rows(tmp_path / name)
        check_schema(rows)
        assert len(rows) == 1  # one short sentence each
        assert float(rows[0]["face_coverage"]) > 0.9
        # GRID is neutral read speech ("bin blue at f two now")
        assert abs(float(rows[0]["sentiment"])) < 1.5


@requires_shared
def test_mosi_clip_text_close_to_manual_transcript(tmp_path: Path, shared: Path):
    clip = shared / "data" / "mosi" / "clips" / "Oz06ZWiO20M_6.mp4"
    assert main(["run", str(clip), "--out", str(tmp_path), "--no-progress"]) == 0
    rows = read_rows(tmp_path / "Oz06ZWiO20M_6.csv")
    check_schema(rows)
    manual = "and sucker punch is a failer but like a really ambitious weird the interesting idiosyncratic failure"
    assert word_error_rate(manual, " ".join(r["text"] for r in rows)) <= 0.3


def test_bad_inputs_in_a_batch_are_listed_and_the_batch_goes_on(tmp_path: Path, make_media, example_clip: Path,
                                                                 caplog: pytest.LogCaptureFixture):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "notes.mp4").write_text("this is not a video\n")
    (folder / "empty.mov").write_bytes(b"")
    mute = make_media("mute.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1",
                      "-pix_fmt", "yuv420p")
    (folder / "mute.mp4").write_bytes(mute.read_bytes())
    (folder / "good.mp4").write_bytes(example_clip.read_bytes())
    out = tmp_path / "out"
    code = main(["run", str(folder), "--out", str(out), "--no-progress"])
    assert code == 1  # a failure in the batch is visible to scripts
    summary = {Path(r["video"]).name: r for r in read_rows(out / "summary.csv")}
    assert summary["good.mp4"]["status"] == "ok" and (out / "good.csv").exists()
    for bad in ("notes.mp4", "empty.mov", "mute.mp4"):
        assert summary[bad]["status"] == "failed" and summary[bad]["error"]
        assert not (out / f"{Path(bad).stem}.csv").exists()
    assert "no audio" in summary["mute.mp4"]["error"]
    assert "empty" in summary["empty.mov"]["error"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_skip_existing_resumes(tmp_path: Path, example_clip: Path, caplog: pytest.LogCaptureFixture):
    out = tmp_path / "out"
    out.mkdir()
    (out / "example.csv").write_text("kept\n")
    code = main(["run", str(example_clip), "--out", str(out), "--skip-existing", "--no-progress"])
    assert code == 0
    assert (out / "example.csv").read_text() == "kept\n"


@requires_shared
def test_silent_video_gives_header_only_csv(tmp_path: Path, shared: Path):
    clip = shared / "data" / "clips" / "pyfeat" / "WolfgangLanger_Pexels.mp4"
    assert main(["run", str(clip), "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "WolfgangLanger_Pexels.csv").read_text().strip() == ",".join(UTTERANCE_COLUMNS)


def test_cli_process_exit_codes_and_one_line_errors(tmp_path: Path, repo_root: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=repo_root, capture_output=True,
                              text=True, timeout=300)

    helped = run("run", "--help")
    assert helped.returncode == 0 and "--skip-existing" in helped.stdout and "examples:" in helped.stdout
    missing = run("run", str(tmp_path / "nope.mp4"), "--out", str(tmp_path))
    assert missing.returncode == 1
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01garbage" * 100)
    bad = run("run", str(corrupt), "--out", str(tmp_path), "--no-progress")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "corrupt.mp4" in bad.stderr and not (tmp_path / "corrupt.csv").exists()
    assert run("frobnicate").returncode == 2
