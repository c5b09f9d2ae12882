"""Hostile and careless input, output side (issue 11): output names unique in a batch, summary rows
never lost by concurrent runs, --skip-existing trusting only complete outputs of the same provenance,
`text` and `report` flat in memory with bad pieces skipped, bad folder entries failing alone."""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import random
import resource
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import report as report_mod
from pipeline.api import reason_to_rescore, score_videos
from pipeline.cli import main
from pipeline.config import OutputOptions, PipelineConfig
from pipeline.errors import PipelineError
from pipeline.inputs import BatchItem, BatchPlan, WriteOptions, collect_inputs, output_stems
from pipeline.output import (
    SUMMARY_COLUMNS,
    UTTERANCE_COLUMNS,
    Provenance,
    SummaryRow,
    check_output,
    merge_summary,
    read_summary,
)
from pipeline.report import MAX_ROWS_DRAWN, MAX_TEXT_CHARS_SHOWN, rebuild_reports

#: A valid utterance row (the CSV cells of ``UTTERANCE_COLUMNS``).
ROW = ["clip.mp4", "0", "0.50", "1.50", "so good", "1.234", "positive", "1.100", "", "", "2", "", "0.900", "0.500",
       "180.0", "-20.0", "", ""]


def this_run() -> Provenance:
    config = PipelineConfig()
    return Provenance.of(config.weights_dir, config.asr.model)


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = UTTERANCE_COLUMNS) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


# --- output names (item 3) -------------------------------------------------------------------------------


def test_same_stems_in_one_batch_keep_the_extension_then_the_folder_then_a_number(tmp_path: Path):
    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mpg"
    c, d = tmp_path / "c" / "clip.mp4", tmp_path / "c" / "clip.mkv"
    e, f = tmp_path / "x" / "same" / "u.wav", tmp_path / "y" / "same" / "u.wav"
    summary, other = tmp_path / "s" / "Summary.mp4", tmp_path / "s" / "other.wav"
    touch(a, b, c, d, e, f, summary, other)
    assert output_stems([a, b]) == ["clip.mp4", "clip.mpg"]
    assert output_stems([a, c, d]) == ["a_clip.mp4", "c_clip.mp4", "clip.mkv"]
    assert output_stems([e, f]) == ["same_u.wav-1", "same_u.wav-2"]
    assert output_stems([a, tmp_path / "a" / ".." / "a" / "clip.mp4", b]) == ["clip.mp4"] * 2 + ["clip.mpg"]
    assert output_stems([summary, other]) == ["Summary.mp4", "other"]  # never the summary's name, in any case
    assert output_stems([a, tmp_path / "CLIP.MOV"]) == ["clip.mp4", "CLIP.MOV"]  # case-insensitive file systems
    plan = BatchPlan.build([a, b, summary], WriteOptions(tmp_path / "out", report=True))
    assert [i.output.name for i in plan.items] == ["clip.mp4.csv", "clip.mpg.csv", "Summary.mp4.csv"]
    assert len({i.output.name.casefold() for i in plan.items} | {"summary.csv"}) == 4


def test_a_name_too_long_for_the_file_system_fails_that_input_before_any_model(tmp_path: Path, no_model_loads):
    long = tmp_path / ("\u00e9" * 125 + ".mp4")  # a 250-byte stem: fits with ".csv", not with ".jsonl"
    ok = tmp_path / "ok.mp4"
    touch(long, ok)
    plan = BatchPlan.build([long, ok], WriteOptions(tmp_path / "out", "jsonl"))
    assert plan.items[0].output is None and "over the file system's limit of 255 bytes" in plan.items[0].error
    assert plan.items[1] == BatchItem(ok, tmp_path / "out" / "ok.jsonl")
    assert BatchPlan.build([long], WriteOptions(tmp_path / "out", "csv")).items[0].error == ""  # 254 bytes fit
    outcomes = score_videos(BatchPlan.build([long], WriteOptions(tmp_path / "out", "jsonl")))
    assert outcomes[0].status == "failed" and str(long) in outcomes[0].error


def test_a_too_long_name_is_a_one_line_error_exit_1(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   no_model_loads):
    long = tmp_path / ("x" * 250 + ".mp4")
    touch(long)
    assert main(["run", str(long), "--out", str(tmp_path / "out"), "--format", "jsonl", "--no-progress"]) == 1
    assert "is 256 bytes in UTF-8, over the file system's limit of 255 bytes" in caplog.text
    assert list((tmp_path / "out").iterdir()) == []


# --- summary.csv: merged under a lock, provenance (items 3, 4) --------------------------------------------


def _merge_many(out: str, worker: int, n: int) -> None:
    for k in range(n):
        merge_summary([SummaryRow(f"w{worker}/v{k}.mp4", "ok", csv=f"{out}/w{worker}_v{k}.csv")],
                      Path(out) / "summary.csv", OutputOptions())


def test_concurrent_runs_lose_no_summary_row(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_merge_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0] * 4
    rows = read_summary(tmp_path / "summary.csv")
    assert sorted(r.video for r in rows) == sorted(f"w{w}/v{k}.mp4" for w in range(4) for k in range(25))


def test_merge_replaces_rows_of_the_same_input_or_output_and_keeps_the_rest(tmp_path: Path):
    path, options = tmp_path / "summary.csv", OutputOptions()
    merge_summary([SummaryRow("a.mp4", "failed", error="x"), SummaryRow("old/b.mp4", "ok", csv="out/b.csv"),
                   SummaryRow("c.mp4", "ok", csv="out/c.csv")], path, options)
    merged = merge_summary([SummaryRow("a.mp4", "ok", csv="out/a.csv"), SummaryRow("new/b.mp4", "ok", csv="out/b.csv")],
                           path, options)
    assert [(r.video, r.status) for r in merged] == [("c.mp4", "ok"), ("a.mp4", "ok"), ("new/b.mp4", "ok")]
    assert [r.video for r in read_summary(path)] == ["c.mp4", "a.mp4", "new/b.mp4"]
    with open(path, encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == SUMMARY_COLUMNS


def test_provenance_is_the_weights_hash_the_asr_model_and_the_version():
    config = PipelineConfig()
    made = Provenance.of(config.weights_dir, config.asr.model)
    shipped = json.loads((config.weights_dir / "config.json").read_text())["model_sha256"]
    assert made.weights_sha256 == shipped and made.asr_model == "tiny.en" and made.version
    assert Provenance.of(Path("/nonexistent"), "base").weights_sha256 == ""


def test_an_older_summary_without_provenance_columns_still_reads(tmp_path: Path):
    (tmp_path / "summary.csv").write_text("video,status,duration_s,utterances,mean_sentiment,language,face_coverage,"
                                          "seconds,csv,error\na.mp4,ok,1.00,1,0.500,en,,2.00,out/a.csv,\n")
    assert read_summary(tmp_path / "summary.csv") == [SummaryRow("a.mp4", "ok", 1.0, 1, 0.5, "en", None, 2.0,
                                                                 "out/a.csv")]


@pytest.mark.parametrize("content,reason", [
    (b"", "it is empty"),
    (b"kept\n", "not a per-video output of the pipeline (columns differ)"),
    (b"\x00\xff\xfe binary \x89PNG\n", "is not UTF-8"),
    (",".join(UTTERANCE_COLUMNS).encode() + b"\n" + ",".join(ROW[:7]).encode(), "does not end with a line end"),
    (",".join(UTTERANCE_COLUMNS).encode() + b"\n" + ",".join(ROW[:7]).encode() + b"\n", "line 2: 7 fields"),
    (",".join(UTTERANCE_COLUMNS).encode() + b"\n" + ",".join(ROW).replace("1.234", "high").encode() + b"\n",
     "line 2: not a pipeline output row"),
    (",".join(UTTERANCE_COLUMNS).encode() + b"\n", "it has 0 rows, its summary.csv row says 1"),
])
def test_skip_existing_never_trusts_an_empty_truncated_binary_or_foreign_csv(tmp_path: Path, content: bytes,
                                                                              reason: str):
    output = tmp_path / "clip.csv"
    output.write_bytes(content)
    row = SummaryRow("clip.mp4", "ok", utterances=1, csv=str(output), **vars(this_run()))
    assert reason in reason_to_rescore(BatchItem(Path("clip.mp4"), output), row, this_run())
    good = write_csv(tmp_path / "good.csv", [ROW])
    assert reason_to_rescore(BatchItem(Path("clip.mp4"), good), SummaryRow(
        "clip.mp4", "ok", utterances=1, csv=str(good), **vars(this_run())), this_run()) == ""


@pytest.mark.parametrize("change,reason", [
    ({"weights_sha256": "0" * 64}, "made with other weights (SHA-256 000000000000, now "),
    ({"weights_sha256": ""}, "made with other weights (SHA-256 not recorded"),
    ({"asr_model": "base"}, "made with ASR model 'base', now 'tiny.en'"),
    ({"status": "failed"}, "its summary.csv row says 'failed'"),
    ({"csv": "elsewhere.csv"}, "row names another output (elsewhere.csv)"),
])
def test_skip_existing_needs_the_same_weights_and_asr_model(tmp_path: Path, change: dict, reason: str):
    good = write_csv(tmp_path / "clip.csv", [ROW])
    row = replace(SummaryRow("clip.mp4", "ok", utterances=1, csv=str(good), **vars(this_run())), **change)
    assert reason in reason_to_rescore(BatchItem(Path("clip.mp4"), good), row, this_run())
    assert "has no row for this input" in reason_to_rescore(BatchItem(Path("clip.mp4"), good), None, this_run())


def test_check_output_accepts_our_jsonl_and_refuses_a_huge_line(tmp_path: Path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps(dict(zip(UTTERANCE_COLUMNS, ROW))).replace('"0"', "0", 1) + "\n")
    assert check_output(tmp_path / "empty.jsonl") != ""  # missing
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert check_output(tmp_path / "empty.jsonl") == ""  # no utterance: an empty JSONL is complete
    assert check_output(good) == "" and check_output(good, expected_rows=2).startswith("it has 1 rows")
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"text": "' + "x" * (2 << 20) + '"}\n')
    assert "a line longer than 1,048,576 bytes" in check_output(huge)


# --- text: streamed, line numbers by "\n" only (items 5, 9) ----------------------------------------------


@pytest.mark.slow
def test_text_line_numbers_count_newlines_only(tmp_path: Path, repo_root: Path):
    source = tmp_path / "in.txt"
    source.write_bytes("i loved it\nit was \u2028awful\x85 really\r\n\nfine\x0bthen\n\u2029ok\n".encode())
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, "-m", "pipeline", "-q", "text", str(source), "--out", str(out)],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["line"] for r in rows] == ["1", "2", "4", "5"]
    assert rows[1]["text"] == "it was \u2028awful\x85 really"


@pytest.mark.slow
def test_text_memory_is_flat_in_the_number_of_lines(tmp_path: Path, repo_root: Path):
    """Rows are scored 256 at a time and written as they go: 4,000 lines peak where 300 do (old: +17 KB a line)."""
    words = "good bad awful great film movie the a was really not very i loved hated it".split()
    rng = random.Random(0)

    def peak_kb(n_lines: int) -> int:
        source = tmp_path / f"{n_lines}.txt"
        source.write_text("".join(" ".join(rng.choice(words) for _ in range(12)) + "\n" for _ in range(n_lines)))
        probe = ("import resource, runpy, sys; sys.argv = ['pipeline', '-q', 'text', sys.argv[1], '--out', "
                 "sys.argv[2]]\ntry:\n    runpy.run_module('pipeline', run_name='__main__')\nexcept SystemExit as e:\n"
                 "    assert not e.code, e.code\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", probe, str(source), str(tmp_path / f"{n_lines}.csv")],
                              cwd=repo_root, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        with open(tmp_path / f"{n_lines}.csv", encoding="utf-8") as f:
            assert sum(1 for _ in f) == n_lines + 1
        return int(done.stdout.split()[-1])

    small, large = peak_kb(300), peak_kb(4000)
    assert large - small < 25_000, f"peak RSS grew {(large - small) / 1024:.0f} MiB for 3,700 more lines"


# --- report: bounded, bad files skipped (items 5, 6, 8) --------------------------------------------------


def test_report_on_200k_rows_draws_a_bounded_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rows = [[ROW[0], str(i), f"{i:.2f}", f"{i + 0.8:.2f}", *ROW[4:]] for i in range(200_000)]
    write_csv(tmp_path / "long.csv", rows)
    drawn: list[int] = []
    render = report_mod.render_png

    def counted(data: report_mod.ReportData) -> bytes:
        drawn.append(len(data.rows))
        return render(data)

    monkeypatch.setattr(report_mod, "render_png", counted)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rebuild_reports(tmp_path) == [tmp_path / "long.html"]
    assert drawn == [MAX_ROWS_DRAWN]  # one picture of the first 500 rows, not 200,000 bars
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
    page = (tmp_path / "long.html").read_text(encoding="utf-8")
    assert page.count('<tr class="utt">') == MAX_ROWS_DRAWN
    assert f"The first {MAX_ROWS_DRAWN} of 200,000 utterances are shown" in page
    assert "<td>utterances / words</td><td class=\"num\">200000 / 400000</td>" in page


def test_report_cuts_long_text_and_skips_a_huge_jsonl_line(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    long_text = "word " * 20_000
    write_csv(tmp_path / "wordy.csv", [ROW[:4] + [long_text] + ROW[5:]])
    (tmp_path / "huge.jsonl").write_text(json.dumps({**dict(zip(UTTERANCE_COLUMNS, ROW)), "text": "x" * 10_000_000})
                                         + "\n")
    assert rebuild_reports(tmp_path) == [tmp_path / "wordy.html"]
    page = (tmp_path / "wordy.html").read_text(encoding="utf-8")
    assert "word " * (MAX_TEXT_CHARS_SHOWN // 5 - 1) in page and "word " * (MAX_TEXT_CHARS_SHOWN // 5 + 1) not in page
    assert "huge.jsonl:1: a line longer than 1,048,576 bytes" in caplog.text


@pytest.mark.parametrize("make,reason", [
    (lambda p: os.mkfifo(p), "is not a regular file"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage\n"), "is not UTF-8"),
    (lambda p: p.write_text("a,b\n1,2\n"), "columns differ"),
    (lambda p: p.write_text(",".join(UTTERANCE_COLUMNS) + "\n" + "x" * 200_000 + "\n"), "field larger than"),
])
def test_report_skips_an_unreadable_output_and_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture, make,
                                                       reason: str):
    write_csv(tmp_path / "good.csv", [ROW])
    make(tmp_path / "bad.csv")
    assert main(["report", str(tmp_path)]) == 1  # one skipped: visible to scripts
    assert (tmp_path / "good.html").is_file() and not (tmp_path / "bad.html").exists()
    assert reason in caplog.text and "1 report written, 1 file skipped" in caplog.text


def test_report_tolerates_inf_times_and_a_broken_or_latin1_summary(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture):
    write_csv(tmp_path / "clip.csv", [ROW, ROW[:2] + ["inf", "nan"] + ROW[4:], ROW[:2] + ["soon"] + ROW[3:]])
    (tmp_path / "summary.csv").write_bytes(
        (",".join(SUMMARY_COLUMNS) + "\n" + "caf\xe9/clip.mp4,ok,inf,3,0.5,en,inf,1.0,"
         + str(tmp_path / "clip.csv") + ",,,,\nx.mp4,ok,long,n/a,,,,,,,,,\n").encode("latin-1"))
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "clip.html").read_text(encoding="utf-8")
    assert page.count('<tr class="utt">') == 1 and "caf\u00e9/clip.mp4" in page
    assert "2 rows left out of the report" in caplog.text and "is not UTF-8" in caplog.text
    assert "1 row not a summary row" in caplog.text and "Traceback" not in caplog.text


# --- batch inputs: bad folder entries (item 6) ----------------------------------------------------------


def test_a_dangling_or_looping_link_in_a_folder_is_an_input_like_any_other(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    touch(folder / "good.mp4")
    (folder / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    assert [p.name for p in collect_inputs([folder])] == ["dangling.mp4", "good.mp4", "loop.mp4"]
    plan = BatchPlan.build([folder], WriteOptions(tmp_path / "out"))
    assert [i.output.name for i in plan.items] == ["dangling.csv", "good.csv", "loop.csv"] and plan.is_batch


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_an_unlistable_folder_is_a_one_line_error(tmp_path: Path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    try:
        with pytest.raises(PipelineError, match="locked: cannot be listed: Permission denied"):
            collect_inputs([folder])
    finally:
        folder.chmod(0o755)


def test_an_unlistable_folder_given_is_answered_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "locked"
    folder.mkdir()

    def refuse(self: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(PipelineError, match=r"locked: cannot be listed: Permission denied$"):
        BatchPlan.build([folder])


@pytest.mark.slow
def test_bad_links_fail_alone_and_the_rest_is_scored(tmp_path: Path, example_clip: Path, loaded_models):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mp4").symlink_to(example_clip)
    (folder / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--no-progress"], models=loaded_models) == 1
    summary = {Path(r.video).name: r for r in read_summary(out / "summary.csv")}
    assert summary["good.mp4"].status == "ok" and (out / "good.csv").is_file()
    assert summary["dangling.mp4"].status == "failed" and "no such file" in summary["dangling.mp4"].error
    assert summary["loop.mp4"].status == "failed" and summary["loop.mp4"].error
    assert summary["good.mp4"].weights_sha256 == this_run().weights_sha256


@pytest.mark.slow
def test_colliding_names_all_survive_a_run_and_resume_skips_only_what_is_done(tmp_path: Path, example_clip: Path,
                                                                             loaded_models,
                                                                             caplog: pytest.LogCaptureFixture):
    for folder, name in (("a", "clip.mp4"), ("b", "clip.mp4"), ("b", "summary.mp4")):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / name).symlink_to(example_clip)
    inputs = [str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b")]
    out = tmp_path / "out"
    assert main(["run", *inputs, "--out", str(out), "--no-progress"], models=loaded_models) == 0
    assert sorted(p.name for p in out.glob("*.csv")) == ["a_clip.mp4.csv", "b_clip.mp4.csv", "summary.csv",
                                                         "summary.mp4.csv"]
    rows = read_summary(out / "summary.csv")
    assert [Path(r.csv).name for r in rows] == ["a_clip.mp4.csv", "b_clip.mp4.csv", "summary.mp4.csv"]
    assert all(r.utterances == 3 and r.asr_model == "tiny.en" for r in rows)

    (out / "b_clip.mp4.csv").write_text(",".join(UTTERANCE_COLUMNS) + "\n")  # truncated to its header
    caplog.set_level(logging.INFO, "pipeline")
    assert main(["run", *inputs, "--out", str(out), "--no-progress", "--skip-existing"], models=loaded_models) == 0
    again = {Path(r.csv).name: r for r in read_summary(out / "summary.csv")}
    assert again["a_clip.mp4.csv"].status == again["summary.mp4.csv"].status == "skipped"
    assert again["a_clip.mp4.csv"].utterances == 3 and again["a_clip.mp4.csv"].duration_s  # earlier figures
    assert again["b_clip.mp4.csv"].status == "ok" and check_output(out / "b_clip.mp4.csv", 3) == ""
    assert "it has 0 rows, its summary.csv row says 3; scoring it again" in caplog.text
