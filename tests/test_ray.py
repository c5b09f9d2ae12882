"""The Ray engine gives exactly what the local engine gives: same files, rows, summary and exit code."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from storage.locations import shared_data_dir

ray = pytest.importorskip("ray", reason="Ray not installed (optional: pip install -r requirements-ray.txt)")
pytestmark = pytest.mark.slow

GRID = shared_data_dir() / "clips" / "grid"


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, example_clip: Path) -> list[str]:
    folder = tmp_path_factory.mktemp("ray-in")
    bad = folder / "broken.mp4"
    bad.write_bytes(b"\x00garbage" * 50)  # a failure must be gathered like any outcome
    if GRID.is_dir():
        return [str(GRID), str(bad)]
    clips = folder / "clips"
    clips.mkdir()
    for i in range(3):
        shutil.copy(example_clip, clips / f"copy{i}.mp4")
    return [str(clips), str(bad)]


def test_ray_batch_equals_local_batch(inputs: list[str], tmp_path: Path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    started = time.perf_counter()
    assert main(["run", *inputs, "--out", str(local), "--no-progress"]) == 1  # the broken input fails
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    assert main(["run", *inputs, "--out", str(on_ray), "--no-progress", "--engine", "ray"]) == 1
    ray_s = time.perf_counter() - started
    print(f"local {local_s:.1f} s, ray {ray_s:.1f} s")  # pytest -s shows the comparison

    assert sorted(p.name for p in on_ray.iterdir()) == sorted(p.name for p in local.iterdir())
    # no temporary file is left; the summary's lock file (pipeline/output.py) is the one hidden file
    assert not [p for p in on_ray.iterdir() if p.name.startswith(".") and p.name != ".summary.lock"]
    summary_local, summary_ray = rows(local / "summary.csv"), rows(on_ray / "summary.csv")
    ignore = {"seconds", "csv"}  # wall time, and the output folder in the path
    for a, b in zip(summary_local, summary_ray, strict=True):
        assert {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}
        assert Path(a["csv"]).name == Path(b["csv"]).name
    assert [r["status"] for r in summary_ray].count("failed") == 1
    assert "broken.mp4" in summary_ray[-1]["error"]
    for path in local.glob("*.csv"):
        if path.name == "summary.csv":
            continue
        want, got = rows(path), rows(on_ray / path.name)
        assert len(got) == len(want) > 0
        for w, g in zip(want, got):
            assert float(g["sentiment"]) == pytest.approx(float(w["sentiment"]), abs=1e-3)
            assert {k: v for k, v in g.items() if k != "sentiment"} == {k: v for k, v in w.items() if k != "sentiment"}
    assert not ray.is_initialized(), "the local Ray started for the batch is shut down after it"


def test_ray_set_up_error_is_one_line(example_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    code = main(["run", str(example_clip), "--out", str(tmp_path), "--no-progress", "--engine", "ray",
                 "--weights", str(tmp_path / "no-weights")])
    assert code == 1
    assert "not a MIAR weights folder" in caplog.text and "Traceback" not in caplog.text
    assert not ray.is_initialized()
