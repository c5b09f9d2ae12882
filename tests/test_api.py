"""The batch API: typed outcomes in input order, files per format, skip, failures, errors."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import pytest

from pipeline import BatchInterrupted, VideoOutcome, score_videos
from pipeline.errors import PipelineError
from pipeline.output import UTTERANCE_COLUMNS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, example_clip: Path) -> tuple[Path, list[VideoOutcome], list]:
    folder = tmp_path_factory.mktemp("api")
    bad = folder / "notes.mp4"
    bad.write_text("this is not a video\n")
    out = folder / "out"
    seen: list[VideoOutcome] = []
    outcomes = score_videos([example_clip, bad], out_dir=out, fmt="jsonl", on_outcome=seen.append)
    return out, outcomes, seen


def test_outcomes_are_typed_and_in_input_order(batch, example_clip: Path):
    out, outcomes, seen = batch
    assert [o.path.name for o in outcomes] == ["example.mp4", "notes.mp4"]
    ok, failed = outcomes
    assert ok.status == "ok" and ok.error == "" and ok.output == out / "example.jsonl" and ok.seconds > 0
    assert len(ok.result.utterances) == 3 and ok.result.mean_sentiment is not None
    assert failed.status == "failed" and failed.result is None and failed.output is None
    assert "notes.mp4" in failed.error and "cannot be read as media" in failed.error
    assert seen == outcomes  # on_outcome saw each once
    assert failed.summary_row().status == "failed" and failed.summary_row().error == failed.error


def test_jsonl_has_the_csv_fields_and_matches_the_expected_csv(batch, repo_root: Path):
    out, outcomes, _ = batch
    assert sorted(p.name for p in out.iterdir()) == ["example.jsonl"]  # nothing for the failed input, no temp files
    lines = [json.loads(line) for line in (out / "example.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(repo_root / "examples" / "expected" / "example.csv", encoding="utf-8") as f:
        expected = list(csv.DictReader(f))
    assert len(lines) == len(expected) == 3
    for got, exp in zip(lines, expected):
        assert tuple(got) == UTTERANCE_COLUMNS
        assert isinstance(got["sentiment"], float) and isinstance(got["utterance"], int)
        assert got["text"] == exp["text"] and got["polarity"] == exp["polarity"]
        assert got["sentiment"] == pytest.approx(float(exp["sentiment"]), abs=0.05)
    scores = [u.sentiment for u in outcomes[0].result.utterances]
    assert [line["sentiment"] for line in lines] == [round(s, 3) for s in scores]


def test_without_out_dir_nothing_is_written_and_skip_needs_no_models(batch, example_clip: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    out, outcomes, _ = batch
    monkeypatch.chdir(tmp_path)
    again = score_videos([example_clip])
    assert again[0].output is None and list(tmp_path.iterdir()) == []
    assert [u.sentiment for u in again[0].result.utterances] == [u.sentiment for u in outcomes[0].result.utterances]

    started = time.perf_counter()
    skipped = score_videos([example_clip], out_dir=out, fmt="jsonl", skip_existing=True)
    assert time.perf_counter() - started < 3, "nothing to do: models must not load"
    assert skipped == [VideoOutcome(example_clip, "skipped", output=out / "example.jsonl")]


def test_bad_requests_raise_before_work(example_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(PipelineError, match="out_dir"):
        score_videos([example_clip], report=True)
    with pytest.raises(PipelineError, match="format"):
        score_videos([example_clip], out_dir=tmp_path, fmt="xml")
    with pytest.raises(PipelineError, match="no such file"):
        score_videos([tmp_path / "missing.mp4"])
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(PipelineError, match="requirements-ray.txt"):
        score_videos([example_clip], out_dir=tmp_path, engine="ray")


def test_ctrl_c_carries_finished_outcomes(example_clip: Path, tmp_path: Path):
    def interrupt_after_first(outcome: VideoOutcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as caught:
        score_videos([example_clip, example_clip], out_dir=tmp_path, on_outcome=interrupt_after_first)
    assert [o.status for o in caught.value.outcomes] == ["ok"] and caught.value.total == 2
    assert isinstance(caught.value, KeyboardInterrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.csv"]
