"""The batch API: the plan (inputs expanded once), typed outcomes in input order, files per format, skip,
failures, errors."""

from __future__ import annotations

import csv
import json
import pickle
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import BatchInterrupted, BatchPlan, RunOptions, VideoOutcome, WriteOptions, score_videos
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.inputs import BatchItem
from pipeline.models import Models
from pipeline.output import UTTERANCE_COLUMNS, Provenance, SummaryRow, merge_summary, read_summary


def test_plan_expands_inputs_once_and_names_each_output(tmp_path: Path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("b.mp4", "a.wav", "notes.txt", "c.MKV"):
        (folder / name).write_bytes(b"")
    single = tmp_path / "talk.mov"
    single.write_bytes(b"")
    plan = BatchPlan.build([single, folder], WriteOptions(tmp_path / "out", "jsonl", report=True))
    out = tmp_path / "out"
    assert plan.items == (
        BatchItem(single, out / "talk.jsonl"), BatchItem(folder / "a.wav", out / "a.jsonl"),
        BatchItem(folder / "b.mp4", out / "b.jsonl"), BatchItem(folder / "c.MKV", out / "c.jsonl"),
    )
    assert plan.is_batch and not BatchPlan.build([single]).is_batch and BatchPlan.build([folder / "a.wav"]).items == (
        BatchItem(folder / "a.wav", None),)  # nothing is written without an output folder
    assert BatchPlan.build([folder / "a.wav"], WriteOptions(tmp_path)).items[0].output == tmp_path / "a.csv"
    assert pickle.loads(pickle.dumps(plan)) == plan  # what the Ray engine sends its workers
    with pytest.raises(PipelineError, match="no such file or folder"):
        BatchPlan.build([single, tmp_path / "gone.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match="folder holds no media file"):
        BatchPlan.build([tmp_path / "empty"])
    with pytest.raises(PipelineError, match="unknown format 'xml'"):
        WriteOptions(tmp_path, "xml")
    with pytest.raises(PipelineError, match="out_dir"):
        WriteOptions(report=True)


def done_earlier(out: Path, inputs: list[Path], **provenance: str) -> list[SummaryRow]:
    """Header-only outputs in ``out`` for ``inputs`` and their summary.csv rows, as a finished run leaves them."""
    config = PipelineConfig()
    made_with = {**vars(Provenance.of(config.weights_dir, config.asr.model)), **provenance}
    rows = []
    for path in inputs:
        (out / f"{path.stem}.csv").write_text(",".join(UTTERANCE_COLUMNS) + "\n")
        output = out / f"{path.stem}.csv"
        rows.append(SummaryRow(str(path), "no_speech", 2.5, 0, None, "", 0.75, 9.0, str(output), **made_with))
    return merge_summary(rows, out / "summary.csv", config.output)


def test_skipping_everything_loads_no_model(tmp_path: Path, no_model_loads: None):
    inputs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for path in inputs:
        path.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    earlier = done_earlier(out, inputs)
    plan = BatchPlan.build(inputs, WriteOptions(out), RunOptions(skip_existing=True))
    outcomes = score_videos(plan)
    assert outcomes == [VideoOutcome(p, "skipped", output=out / f"{p.stem}.csv", earlier=row)
                        for p, row in zip(inputs, earlier)]
    assert [o.summary_row().csv for o in outcomes] == [str(out / "a.csv"), str(out / "b.csv")]
    # the summary keeps the earlier figures and provenance, with status "skipped"
    assert [o.summary_row() for o in outcomes] == [replace(row, status="skipped") for row in earlier]
    # the library keeps the summary itself: the rows now say "skipped", with the earlier figures
    assert read_summary(out / "summary.csv") == [replace(row, status="skipped") for row in earlier]


def test_the_engines_share_a_job_module_and_ray_never_imports_the_api(repo_root: Path):
    probe = ("import sys, pipeline.ray_engine, pipeline.jobs; "
             "print(sorted(m for m in ('pipeline.api', 'pipeline.cli', 'torch', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, example_clip: Path,
          loaded_models: Models) -> tuple[Path, list[VideoOutcome], list]:
    folder = tmp_path_factory.mktemp("api")
    bad = folder / "notes.mp4"
    bad.write_text("this is not a video\n")
    out = folder / "out"
    seen: list[VideoOutcome] = []
    outcomes = score_videos(BatchPlan.build([example_clip, bad], WriteOptions(out, "jsonl")), models=loaded_models,
                            on_outcome=seen.append)
    return out, outcomes, seen


@pytest.mark.slow
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


@pytest.mark.slow
def test_jsonl_has_the_csv_fields_and_matches_the_expected_csv(batch, repo_root: Path):
    out, outcomes, _ = batch
    # nothing for the failed input, no temp files; the batch's summary (and its lock) written by the library
    assert sorted(p.name for p in out.iterdir()) == [".summary.lock", "example.jsonl", "summary.csv"]
    assert [(r.status, r.csv) for r in read_summary(out / "summary.csv")] == [
        ("ok", str(out / "example.jsonl")), ("failed", "")]
    lines = [json.loads(line) for line in (out / "example.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(repo_root / "examples" / "expected" / "example.csv", encoding="utf-8") as f:
        expected = list(csv.DictReader(f))
    assert len(lines) == len(expected) == 3
    for got, exp in zip(lines, expected):
        assert tuple(got) == UTTERANCE_COLUMNS
        assert isinstance(got["sentiment"], float) and isinstance(got["utterance"], int)
        assert got["text"] == exp["text"] and got["polarity"] == exp["polarity"]
        for key in ("sentiment", "text_score", "voice_score", "face_score"):
            assert isinstance(got[key], float) and got[key] == pytest.approx(float(exp[key]), abs=0.05), key
    scores = [u.sentiment for u in outcomes[0].result.utterances]
    assert [line["sentiment"] for line in lines] == [round(s, 3) for s in scores]
    assert [line["voice_score"] for line in lines] == [round(u.voice_score, 3) for u in outcomes[0].result.utterances]
    assert outcomes[0].result.modalities_used == ("text", "audio", "vision")


@pytest.mark.slow
def test_without_out_dir_nothing_is_written_and_skip_needs_no_models(
        batch, example_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded_models: Models):
    out, outcomes, _ = batch
    monkeypatch.chdir(tmp_path)
    again = score_videos([example_clip], models=loaded_models)
    assert again[0].output is None and list(tmp_path.iterdir()) == []
    assert [u.sentiment for u in again[0].result.utterances] == [u.sentiment for u in outcomes[0].result.utterances]

    # what made each output is in summary.csv, written by score_videos itself: the API resumes as the CLI does
    written = read_summary(out / "summary.csv")
    monkeypatch.setattr(Models, "load", lambda *a, **k: pytest.fail("nothing to do: models must not load"))
    skipped = score_videos(BatchPlan.build([example_clip], WriteOptions(out, "jsonl"), RunOptions(skip_existing=True)))
    assert skipped == [VideoOutcome(example_clip, "skipped", output=out / "example.jsonl", earlier=written[0])]


def test_bad_requests_raise_before_work(example_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(PipelineError, match="out_dir"):
        WriteOptions(report=True)
    with pytest.raises(PipelineError, match="format"):
        WriteOptions(tmp_path, "xml")
    with pytest.raises(PipelineError, match="no such file"):
        score_videos([tmp_path / "missing.mp4"])
    with pytest.raises(PipelineError, match="engine"):
        RunOptions(engine="gpu")
    with pytest.raises(PipelineError, match="skip_existing needs an output folder"):
        BatchPlan.build([example_clip], run=RunOptions(skip_existing=True))
    with pytest.raises(PipelineError, match="local engine"):
        score_videos(BatchPlan.build([example_clip], run=RunOptions(engine="ray")), models=object())  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="is a file, not a folder"):
        score_videos(BatchPlan.build([example_clip], WriteOptions(example_clip / "out")))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(PipelineError, match="requirements-ray.txt"):
        score_videos(BatchPlan.build([example_clip], WriteOptions(tmp_path), RunOptions(engine="ray")))


@pytest.mark.slow
def test_ctrl_c_carries_finished_outcomes(example_clip: Path, tmp_path: Path, loaded_models: Models):
    def interrupt_after_first(outcome: VideoOutcome) -> None:
        raise KeyboardInterrupt

    second = tmp_path / "second.mp4"
    second.symlink_to(example_clip)
    out = tmp_path / "out"
    with pytest.raises(BatchInterrupted) as caught:
        score_videos(BatchPlan.build([example_clip, second], WriteOptions(out)), models=loaded_models,
                     on_outcome=interrupt_after_first)
    assert [o.status for o in caught.value.outcomes] == ["ok"] and caught.value.total == 2
    assert isinstance(caught.value, KeyboardInterrupt)
    assert sorted(p.name for p in out.iterdir()) == [".summary.lock", "example.csv", "summary.csv"]
    assert [(r.video, r.status) for r in read_summary(out / "summary.csv")] == [(str(example_clip), "ok")]


class _StandInRay(types.ModuleType):
    """Just enough of Ray's API for ``pipeline.ray_engine``: actors run here, each call at once."""

    class exceptions:  # Ray's own (lower-case) name
        class RayTaskError(Exception):
            def __init__(self, cause: BaseException) -> None:
                super().__init__(repr(cause))
                self.cause = cause

            def as_instanceof_cause(self) -> BaseException:
                return self.cause

    def __init__(self) -> None:
        super().__init__("ray")
        self.up, self.env, self.killed = False, {}, 0

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **kwargs: object) -> None:
        self.up, self.env = True, kwargs["runtime_env"]["env_vars"]  # type: ignore[index]

    def shutdown(self) -> None:
        self.up = False

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0}

    def remote(self, **options: object):
        def actor_class(cls: type) -> SimpleNamespace:
            def start(*args: object) -> SimpleNamespace:
                body = cls(*args)
                methods = {name: SimpleNamespace(remote=lambda *a, m=getattr(body, name): _Ref(m, *a))
                           for name in ("load", "score", "close")}
                return SimpleNamespace(**methods)
            return SimpleNamespace(remote=start)
        return actor_class

    def get(self, refs: object) -> object:
        if isinstance(refs, list):
            return [self.get(r) for r in refs]
        if refs.error is not None:  # type: ignore[attr-defined]
            raise self.exceptions.RayTaskError(refs.error)  # type: ignore[attr-defined]
        return refs.value  # type: ignore[attr-defined]

    def wait(self, refs: list, num_returns: int = 1) -> tuple[list, list]:
        return refs[:num_returns], refs[num_returns:]

    def kill(self, actor: object) -> None:
        self.killed += 1


class _Ref:
    def __init__(self, method: object, *args: object) -> None:
        try:
            self.value, self.error = method(*args), None  # type: ignore[operator]
        except Exception as e:
            self.value, self.error = None, e


def test_ray_engine_runs_the_shared_job_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The Ray glue with a stand-in Ray (the real one is optional; tests/test_ray.py runs it when installed)."""
    from model.errors import CheckpointError
    from pipeline import ray_engine
    from storage.files import atomic_path

    ray = _StandInRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loads: list[object] = []
    monkeypatch.setattr(Models, "load", classmethod(lambda cls, config, parts=None: loads.append(config) or "models"))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_path(out / "bad.csv") as tmp:  # storage.files' temporary name
        temporary_name = tmp.name
        raise RuntimeError

    def score_one(item: BatchItem, config: object, models: object, options: WriteOptions,
                  progress: object = None) -> VideoOutcome:
        assert models == "models" and progress is None and options == WriteOptions(out)
        if item.path.name == "bad.mp4":
            (out / temporary_name).write_text("half a file")  # as a worker killed mid-write leaves it
            return VideoOutcome(item.path, "failed", error="bad.mp4: broken")
        item.output.write_text("rows\n")
        return VideoOutcome(item.path, "ok", output=item.output)

    monkeypatch.setattr(ray_engine, "score_one", score_one)
    inputs = [tmp_path / name for name in ("a.mp4", "bad.mp4", "c.mp4")]
    for path in inputs:
        path.write_bytes(b"")
    plan = BatchPlan.build(inputs, WriteOptions(out), RunOptions(engine="ray"))
    outcomes = score_videos(plan)
    assert [(o.path.name, o.status) for o in outcomes] == [("a.mp4", "ok"), ("bad.mp4", "failed"), ("c.mp4", "ok")]
    assert len(loads) == 2 and ray.killed == 2 and not ray.up  # one load per actor; the local Ray is stopped
    assert "PYTHONPATH" not in ray.env and ray.env["HF_HUB_OFFLINE"] == "1" and ray.env["OMP_NUM_THREADS"]

    (out / temporary_name).unlink()

    def interrupt(outcome: VideoOutcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as caught:  # Ctrl-C while bad.mp4 is still "running"
        score_videos(plan, on_outcome=interrupt)
    assert [o.path.name for o in caught.value.outcomes] == ["a.mp4"]
    # the partial file is removed
    assert sorted(p.name for p in out.iterdir()) == [".summary.lock", "a.csv", "c.csv", "summary.csv"]

    def refuse(cls: type, config: object, parts: object = None) -> None:
        raise CheckpointError("no-weights: not a MIAR weights folder")

    monkeypatch.setattr(Models, "load", classmethod(refuse))
    with pytest.raises(CheckpointError, match="not a MIAR weights folder"):  # as itself, one line in the CLI
        score_videos(plan)
    assert not ray.up


def test_a_batch_of_audio_files_loads_no_face_models():
    from pipeline.api import parts_for

    assert "face" not in parts_for([Path("a.wav"), Path("b.MP3"), Path("c.opus")])
    assert "face" in parts_for([Path("a.wav"), Path("b.mp4")])
    assert set(parts_for([Path("clip.mkv")])) == {"asr", "face", "text", "miar"}


@pytest.mark.slow
def test_a_video_scored_without_face_models_says_so(loaded_models):
    """A file named as audio that holds a video track is scored from its words and voice, with a warning."""
    from pipeline.features import featurize
    from tests.conftest import EXAMPLE_CLIP

    features = featurize(EXAMPLE_CLIP, PipelineConfig(), replace(loaded_models, face=None))
    assert features.status == "ok" and features.face_coverage is None
    assert any("face models were not loaded" in w for w in features.warnings)
    assert all(s.vision is None for s in features.samples)
