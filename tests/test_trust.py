"""Trust (issue 18): no output replaces an input of its run, a batch killed by any signal resumes without
re-scoring what is done, duplicate inputs are scored once, the text path refuses what is not a list of str
and names the exact line of an undecodable byte, log lines stay one line, the summary line counts each status.

Light on purpose: models and scoring are stand-ins (``tests/batch_stand_in.py``), so these run in seconds;
the killed batches are real processes sent real signals.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import score
from pipeline.cli import OneLineFormatter, main
from pipeline.inputs import BatchPlan, WriteOptions
from pipeline.models import Models
from pipeline.output import read_summary
from pipeline.text_scoring import TextScore, TextScorer, check_texts, score_texts
from tests import batch_stand_in


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Models and scoring replaced in this process (as ``tests.batch_stand_in``); returns the names scored."""
    scored: list[str] = []

    def score_video(path: Path, *args: object, **kwargs: object):
        scored.append(path.name)
        result = batch_stand_in.stand_in_result(path)
        if path.stem.startswith("silent"):
            from dataclasses import replace

            result = replace(result, status="no_speech", utterances=(), language="", language_probability=None)
        return result

    monkeypatch.setattr(Models, "load", classmethod(lambda cls, config, **which: Models(ffmpeg=Path("ffmpeg"))))
    monkeypatch.setattr(score, "score_video", score_video)
    return scored


def media_files(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return [folder / name for name in names]


# --- 1. an output never replaces an input of the same run -------------------------------------------------


@pytest.mark.parametrize("case", ["csv_named_video", "report_over_input", "summary_over_input", "linked_out"])
def test_run_refuses_to_write_an_output_over_an_input(tmp_path: Path, case: str, no_model_loads: None,
                                                      caplog: pytest.LogCaptureFixture):
    clips = tmp_path / "clips"
    clips.mkdir()
    args = {
        "csv_named_video": (["vid.csv"], "clips", []),          # a real video named .csv: out is clips/vid.csv
        "report_over_input": (["page.html"], "clips", ["--report"]),
        "summary_over_input": (["summary.csv", "b.mp4"], "clips", []),
        "linked_out": (["vid.csv"], "link", []),                 # the output folder is a link to the inputs' one
    }[case]
    names, out, flags = args
    inputs = media_files(clips, *names)
    for path in inputs:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42 a video, 401 KB in the issue")
    (tmp_path / "link").symlink_to(clips)
    with caplog.at_level(logging.ERROR):
        code = main(["run", *map(str, inputs), "--out", str(tmp_path / out), *flags])
    assert code == 1
    assert [p.read_bytes() for p in inputs] == [b"\x00\x00\x00\x18ftypmp42 a video, 401 KB in the issue"] * len(inputs)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "would be written over the input" in errors[0] and "nothing was scored" in errors[0]


def test_text_refuses_out_naming_its_input(tmp_path: Path, no_model_loads: None, caplog: pytest.LogCaptureFixture):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("I loved it\n")
    (tmp_path / "hard.txt").hardlink_to(reviews)
    for out in (reviews, tmp_path / "." / "reviews.txt", tmp_path / "hard.txt"):
        caplog.clear()
        assert main(["text", str(reviews), "--out", str(out)]) == 1
        assert reviews.read_text() == "I loved it\n"
        assert "is the input" in caplog.text and "would replace the texts" in caplog.text


def test_extract_refuses_to_write_over_a_media_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipeline import extract as extract_mod
    from pipeline.errors import PipelineError

    dataset, out = tmp_path / "data", tmp_path / "feats"
    (dataset / "Raw" / "v").mkdir(parents=True)
    (dataset / "label.csv").write_text("video_id,clip_id,text,label,mode\nv,c1,hi,1,train\n")
    (out / "train" / "v").mkdir(parents=True)
    (out / "train" / "v" / "c1.npz").write_bytes(b"the only copy of the clip")
    (dataset / "Raw" / "v" / "c1.mp4").symlink_to(out / "train" / "v" / "c1.npz")  # media may be a link
    monkeypatch.setattr(extract_mod, "_extract_clip", lambda *a: pytest.fail("nothing may be extracted"))
    with pytest.raises(PipelineError, match="would be written over the input .*c1.mp4; nothing was extracted"):
        extract_mod.extract_dataset(dataset, out, models=Models(ffmpeg=Path("ffmpeg")))
    assert (out / "train" / "v" / "c1.npz").read_bytes() == b"the only copy of the clip"


def test_out_naming_an_existing_file_says_so(tmp_path: Path, no_model_loads: None, caplog: pytest.LogCaptureFixture):
    clip, = media_files(tmp_path, "a.mp4")
    afile = tmp_path / "afile.txt"
    afile.write_text("keep me\n")
    for out in (afile, afile / "sub"):
        caplog.clear()
        assert main(["run", str(clip), "--out", str(out)]) == 1
        assert "is a file, not a folder" in caplog.text and "File exists" not in caplog.text
    (tmp_path / "label.csv").write_text("video_id,clip_id,text,label,mode\nv,c1,hi,1,train\n")
    caplog.clear()
    assert main(["extract", "--dataset", str(tmp_path), "--out", str(afile)]) == 1
    assert "is a file, not a folder" in caplog.text and "File exists" not in caplog.text
    assert afile.read_text() == "keep me\n"


# --- 3. a batch survives SIGTERM and SIGKILL ------------------------------------------------------------


def stand_in_batch(folder: Path, out: Path, log: Path, seconds: float, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "STAND_IN_SECONDS": str(seconds), "STAND_IN_LOG": str(log)}
    return subprocess.Popen([sys.executable, "-m", "tests.batch_stand_in", "run", str(folder), "--out", str(out),
                             *flags], cwd=batch_stand_in.__file__.rsplit("/tests/", 1)[0], env=env,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_batch_resumes_without_scoring_again_what_is_done(tmp_path: Path, sig: signal.Signals):
    folder, out = tmp_path / "videos", tmp_path / "out"
    inputs = media_files(folder, *(f"c{i}.mp4" for i in range(6)))
    batch = stand_in_batch(folder, out, tmp_path / "first.log", 0.4)
    deadline = time.monotonic() + 120
    while len(read_summary(out / "summary.csv")) < 2:  # two inputs done (their rows are written as each ends)
        assert batch.poll() is None and time.monotonic() < deadline, "the batch ended before it was killed"
        time.sleep(0.05)
    batch.send_signal(sig)
    _, stderr = batch.communicate(timeout=60)
    done = read_summary(out / "summary.csv")
    outputs = sorted(p.name for p in out.glob("*.csv") if p.name != "summary.csv")
    assert 2 <= len(done) < len(inputs) and {Path(r.csv).name for r in done} <= set(outputs)
    assert not list(out.glob(".*.part*")), "no temporary file left"
    if sig == signal.SIGTERM:
        assert batch.returncode == 128 + signal.SIGTERM
        assert f"stopped by SIGTERM: {len(done)} of 6 inputs done; finished files are kept" in stderr
    else:
        assert batch.returncode == -signal.SIGKILL

    resumed = stand_in_batch(folder, out, tmp_path / "second.log", 0.0, "--skip-existing")
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr[-2000:]
    scored_again = (tmp_path / "second.log").read_text().split()
    assert sorted(scored_again) == sorted(p.name for p in inputs if str(p) not in {r.video for r in done})
    assert [(Path(r.video).name, r.status) for r in read_summary(out / "summary.csv")] == [
        (p.name, "skipped" if str(p) in {r.video for r in done} else "ok") for p in inputs]


# --- 6. the text path: a list of str, exact line numbers --------------------------------------------------


@pytest.mark.parametrize("texts,message", [
    ("great", r"texts is one str \('great'\).*pass a list of texts, e.g. \['great'\]"),
    ("I loved it", r"e.g. \['I loved it'\] to score it as one text"),
    (b"I loved it", r"texts is bytes: decode it"),
    ([None], r"text 0 is NoneType \(None\), not str"),
    (["fine", 1], r"text 1 is int \(1\), not str"),
    (["fine", b"bad"], r"text 1 is bytes \(b'bad'\), not str: decode it"),
    (42, r"texts is a int: pass a list of str"),
])
def test_score_texts_refuses_what_is_not_a_list_of_str_before_any_model(texts: object, message: str,
                                                                          no_model_loads: None):
    with pytest.raises(TypeError, match=message):
        score_texts(texts)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        check_texts(texts)


class _StandInScorer:
    """``TextScorer`` without models: every text scores 1.0."""

    def score_checked(self, texts: list[str], language: str | None = None) -> list[TextScore]:
        check_texts(texts)
        return [TextScore(1.0, "positive", "en") for _ in texts]

    def __enter__(self) -> _StandInScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("bad_line", [1, 51, 301, 1001])
def test_an_undecodable_byte_is_reported_on_its_own_line(tmp_path: Path, bad_line: int,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(TextScorer, "load", classmethod(lambda cls, config: _StandInScorer()))
    lines = [f"line {n} is a fine review \u00e9\u00e9 of the film".encode() for n in range(1, 1201)]
    lines[bad_line - 1] = b"caf\xe9 in Latin-1"
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["text", str(path), "--out", str(tmp_path / "scores.csv")]) == 1
    assert f"reviews.txt:{bad_line}: byte 0xe9 at column 4 is not UTF-8" in caplog.text
    assert not (tmp_path / "scores.csv").exists()


def test_text_rows_take_their_polarity_from_the_scorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture):
    monkeypatch.setattr(TextScorer, "load", classmethod(lambda cls, config: _StandInScorer()))
    path = tmp_path / "reviews.txt"
    path.write_text("I loved it\n")
    assert main(["text", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["line,text,sentiment,polarity,language",
                                                    "1,I loved it,1.000,positive,en"]


# --- 7. duplicates, one-line logs, the summary's counts ---------------------------------------------------


def test_the_same_file_twice_or_with_its_folder_is_one_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    a, b = media_files(tmp_path / "v", "a.mp4", "b.mp4")
    monkeypatch.chdir(tmp_path)
    for given in ([a, a], [a, tmp_path / "v"], [Path("v/a.mp4"), a, Path("v/../v/a.mp4")]):
        plan = BatchPlan.build(given, WriteOptions(tmp_path / "out"))
        names = [item.path.name for item in plan.items]
        assert names == sorted(set(names), key=names.index) and len(names) == len(set(names))
        assert [item.output.name for item in plan.items] == [f"{Path(n).stem}.csv" for n in names]


def test_a_batch_with_a_file_twice_scores_it_once(tmp_path: Path, stand_in: list[str]):
    a, _ = media_files(tmp_path / "v", "a.mp4", "b.mp4")
    out = tmp_path / "out"
    assert main(["run", str(a), str(tmp_path / "v"), str(a), "--out", str(out)]) == 0
    assert stand_in == ["a.mp4", "b.mp4"]
    assert [Path(r.video).name for r in read_summary(out / "summary.csv")] == ["a.mp4", "b.mp4"]


def test_the_summary_line_counts_no_speech_apart_from_failures(tmp_path: Path, stand_in: list[str],
                                                               caplog: pytest.LogCaptureFixture):
    folder = tmp_path / "v"
    media_files(folder, "a.mp4", "silent1.mp4", "silent2.mp4")
    with caplog.at_level(logging.INFO):
        assert main(["run", str(folder), "--out", str(tmp_path / "out")]) == 0
    assert "(1 ok, 2 no speech, 0 failed)" in caplog.text


def test_a_file_name_with_a_newline_stays_on_one_log_line(tmp_path: Path, repo_root: Path):
    name = tmp_path / "evil\nINFO pipeline: all good.mp4"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(name), "--out", str(tmp_path / "out")],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "evil\\nINFO pipeline: all good.mp4: no such file" in proc.stderr
    record = logging.LogRecord("pipeline", logging.ERROR, "", 0, "%s: failed", ("a\rb\x1bc",), None)
    assert OneLineFormatter("%(message)s").format(record) == "a\\rb\\x1bc: failed"


def test_report_leaves_out_and_names_values_the_pipeline_never_writes(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture):
    from tests.test_outputs_hostile import ROW, write_csv

    sentiment_99 = ROW[:5] + ["99.000"] + ROW[6:]
    coverage_7 = ROW[:11] + ["7.000"] + ROW[12:]
    start_after_end = ROW[:2] + ["9.00", "1.50"] + ROW[4:]
    write_csv(tmp_path / "clip.csv", [ROW, sentiment_99, coverage_7, start_after_end])
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(tmp_path)]) == 0
    page = re.sub(r'src="data:[^"]*"', "", (tmp_path / "clip.html").read_text(encoding="utf-8"))
    assert page.count('<tr class="utt">') == 1 and "99.0" not in page and "7.00" not in page
    assert ("3 rows left out of the report (line 3: sentiment 99 is outside [-3, 3], which the pipeline never "
            "writes)") in caplog.text


def test_a_long_line_brings_no_transformers_sequence_length_warning(tmp_path: Path, repo_root: Path):
    """The text is cut into windows that fit: the tokenizer's 'longer than the maximum' warning is noise."""
    probe = ("from pipeline.cli import setup_logging; setup_logging(0, False)\n"
             "from extractors.text import TextEncoder, normalise_text; from pipeline.windows import text_windows\n"
             "words = normalise_text('what a great film, ' * 10500).split()  # a 200 KB line\n"
             "windows, _ = text_windows(words, TextEncoder())\n"
             "print(len(windows) > 100)\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]
    assert "sequence length is longer than" not in proc.stderr
