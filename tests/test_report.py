"""Reports: the plot and the self-contained HTML, checked as files and as rendered by headless Chromium; the
README's picture checked against the shipped weights' output."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from extractors.records import Media, Word
from model.schema import polarity_of
from pipeline.cli import main
from pipeline.config import OutputOptions
from pipeline.output import SummaryRow, UtteranceRow, write_summary, write_video_csv, write_video_jsonl
from pipeline.records import Signals, Utterance, UtteranceScore, VideoResult
from pipeline.report import (
    POLARITY_COLOURS,
    READING_MARKERS,
    rebuild_reports,
    render_html,
    render_png,
    report_data_from_result,
    report_data_from_rows,
    write_report,
)
from storage.files import sha256_of
from storage.locations import DEFAULT_WEIGHTS, REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not installed (apt-get install -y chromium; see README set-up)"
)

HOSTILE = '<script>alert("x")</script> & "quotes" $x^2$ </td>'


#: The README's report picture and the sidecar of the scores it shows (examples/make_report_image.py).
PICTURE = REPO_ROOT / "docs" / "report-example.png"
SIDECAR = REPO_ROOT / "docs" / "report-example.json"


def make_result(scores: list[float], texts: list[str] | None = None, readings: bool = True) -> VideoResult:
    signals = Signals(3, 0.9, 0.8, 0.5, 180.0, -20.0, 0.3, 0.1)
    texts = texts or [f"utterance {i}" for i in range(len(scores))]
    utts = tuple(
        UtteranceScore(Utterance(i, i * 2.0, i * 2.0 + 1.5, (Word(texts[i], i * 2.0, i * 2.0 + 1.5),)),
                       s, polarity_of(s), signals,
                       *((s + 0.5, -1.25, None if i == 1 else 1.75) if readings else (None, None, None)))
        for i, s in enumerate(scores)
    )
    media = Media(Path("clip <one>.mp4"), 2.0 * len(scores) + 1, True, True, 480, 360, 25.0, video_codec="h264",
                  audio_codec="aac")
    return VideoResult(media, "ok" if scores else "no_speech", "en", 0.97, "tiny.en", "miar-v1", ("text",), 0.8,
                       utts, {"asr": 1.0}, ("face found in only 40% of sampled frames",))


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    profile.mkdir()
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)


def test_png_is_a_real_image_that_grows_with_the_text(tmp_path: Path):
    from PIL import Image

    png = render_png(report_data_from_result(make_result([2.0, -1.0, 0.1]), OutputOptions()))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "a.png").write_bytes(png)
    small = Image.open(tmp_path / "a.png")
    long = render_png(report_data_from_result(make_result([0.5] * 12, ["word " * 60] * 12), OutputOptions()))
    (tmp_path / "b.png").write_bytes(long)
    tall = Image.open(tmp_path / "b.png")
    assert small.width == tall.width == 1100
    assert tall.height > small.height + 200  # wrapped utterance text is listed under the plot
    # the bars are drawn in the polarity colours
    pixels = np.asarray(small.convert("RGB")).reshape(-1, 3)
    for colour in (POLARITY_COLOURS["positive"], POLARITY_COLOURS["negative"]):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=1) < 60).sum() > 500, colour


def test_png_marks_each_reading_on_its_bar():
    from PIL import Image

    def dark_pixels(png: bytes) -> int:
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        plot = pixels[: pixels.shape[0] // 2]  # the plot, above the listed text
        return int((np.abs(plot - 0x22).sum(axis=2) < 40).sum())

    options = OutputOptions()
    plain = render_png(report_data_from_result(make_result([2.0, -1.0, 0.1], readings=False), options))
    marked = render_png(report_data_from_result(make_result([2.0, -1.0, 0.1]), options))
    # 8 markers (utterance 1 has no face reading) on the bars + 3 in the legend, ~30 dark pixels each
    assert dark_pixels(marked) > dark_pixels(plain) + 8 * 20
    assert [label for _, label, _ in READING_MARKERS] == ["text alone", "voice alone", "face alone"]


def test_html_is_self_contained_and_escaped(tmp_path: Path):
    html_path = write_report(make_result([2.0, -1.5], [HOSTILE, "fine"]), tmp_path, OutputOptions())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip <one>.html", "clip <one>.png"]  # no temp files
    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page and "alert(&quot;x&quot;)" in page and "&lt;/td&gt;" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page), "only data: URIs may be referenced"
    assert "http://" not in page and "https://" not in page
    assert page.count('<tr class="utt">') == 2
    for shown in ("tiny.en", "miar-v1", "480x360 px", "25 fps", "en (p=0.97)", "face found in only 40%",
                  "<th>text alone</th><th>voice alone</th><th>face alone</th>"):
        assert shown in page
    assert "clip &lt;one&gt;.mp4" in page
    rows = re.findall(r'<tr class="utt">.*?</tr>', page)
    assert '<td class="num">+2.500</td><td class="num">-1.250</td><td class="num">+1.750</td>' in rows[0]
    assert '<td class="num">-1.000</td><td class="num">-1.250</td><td class="num"></td>' in rows[1]  # no face


def test_no_speech_report(tmp_path: Path):
    silent = VideoResult(make_result([]).media, "no_speech", "", None, "tiny.en", "miar-v1", (), 0.97, ())
    page = write_report(silent, tmp_path, OutputOptions()).read_text(encoding="utf-8")
    assert "No speech recognised" in page and '<tr class="utt">' not in page
    assert "<th>language</th><td>none (no speech)</td>" in page
    assert "<th>modalities used</th><td>none (nothing was scored)</td>" in page
    assert "<td>face coverage (whole file)</td><td class=\"num\">97%</td>" in page


@requires_chromium
def test_html_renders_in_headless_chromium(tmp_path: Path):
    html_path = write_report(make_result([2.0, -1.5, 0.2], [HOSTILE, "b", "c"]), tmp_path, OutputOptions())
    dom = run_chromium(tmp_path, "--dump-dom", html_path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r'<tr class="utt">', dom.stdout)) == 3 and "<th>voice alone</th>" in dom.stdout
    assert re.search(r'<img class="plot"[^>]*src="data:image/png;base64,', dom.stdout)
    assert "<script>" not in dom.stdout  # the hostile text stayed text
    shot = tmp_path / "shot.png"
    done = run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", html_path.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    green = np.array([int(POLARITY_COLOURS["positive"][i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - green).sum(axis=1) < 60).sum() > 500, "the embedded plot is not painted"


@pytest.mark.slow
@requires_chromium
def test_run_report_and_rebuild_on_example(tmp_path: Path, example_clip: Path):
    out = tmp_path / "out"
    assert main(["run", str(example_clip), "--out", str(out), "--no-progress", "--report", "--format", "jsonl"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["example.html", "example.jsonl", "example.png"]
    page = (out / "example.html").read_text(encoding="utf-8")
    assert page.count('<tr class="utt">') == 3 and "loved this film" in page and "tiny.en" in page
    dom = run_chromium(tmp_path, "--dump-dom", (out / "example.html").as_uri())
    assert len(re.findall(r'<tr class="utt">', dom.stdout)) == 3 and "data:image/png;base64," in dom.stdout

    # 'report OUT_DIR' rebuilds from the written rows alone
    (out / "example.html").unlink()
    (out / "example.png").unlink()
    assert main(["report", str(out)]) == 0
    rebuilt = (out / "example.html").read_text(encoding="utf-8")
    assert rebuilt.count('<tr class="utt">') == 3 and (out / "example.png").stat().st_size > 10_000
    assert rebuild_reports(out, OutputOptions()) == [out / "example.html"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rebuilt_report_shows_the_rows_the_fresh_one_shows(tmp_path: Path, fmt: str):
    """Both routes read the one row record: the fresh report's rows are the written rows, parsed back."""
    result = make_result([2.0004, -1.23456, 0.1])
    options = OutputOptions()
    fresh = report_data_from_result(result, options)
    (write_video_csv if fmt == "csv" else write_video_jsonl)(result, tmp_path / f"clip <one>.{fmt}", options)
    assert rebuild_reports(tmp_path) == [tmp_path / "clip <one>.html"]
    page = (tmp_path / "clip <one>.html").read_text(encoding="utf-8")
    if fmt == "csv":
        with open(tmp_path / "clip <one>.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        import json

        rows = [json.loads(line) for line in (tmp_path / "clip <one>.jsonl").read_text().splitlines()]
    rebuilt = report_data_from_rows("clip <one>", rows)
    assert rebuilt.rows == fresh.rows and rebuilt.video == fresh.video == "clip <one>.mp4"
    table = re.findall(r'<tr class="utt">.*?</tr>', page)
    assert table == re.findall(r'<tr class="utt">.*?</tr>', render_html(fresh, b""))
    assert "+2.000" in table[0] and "-1.235" in table[1]


def test_rebuild_takes_metadata_from_the_summary(tmp_path: Path):
    result = make_result([1.0])
    write_video_csv(result, tmp_path / "clip <one>.csv", OutputOptions())
    write_summary([SummaryRow.from_result(Path("gone/clip <one>.mp4"), result, tmp_path / "clip <one>.csv", 2.0)],
                  tmp_path / "summary.csv", OutputOptions())
    rebuild_reports(tmp_path, OutputOptions())
    page = (tmp_path / "clip <one>.html").read_text(encoding="utf-8")
    assert "gone/clip &lt;one&gt;.mp4" in page and "3.00 s" in page and "80%" in page  # file, duration, face
    (tmp_path / "summary.csv").write_text("video,status,duration_s\nx.mp4,ok,long\n")
    rebuild_reports(tmp_path, OutputOptions())  # a broken summary costs the metadata, not the report
    assert "not recorded in the CSV" in (tmp_path / "clip <one>.html").read_text(encoding="utf-8")


def test_report_command_errors(tmp_path: Path):
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert main(["report", str(tmp_path)]) == 1  # nothing to report on
    with open(tmp_path / "other.csv", "w", newline="") as f:
        csv.writer(f).writerows([["a", "b"], ["1", "2"]])
    assert main(["report", str(tmp_path)]) == 1  # not our schema: one-line error, no traceback


def _sidecar() -> dict:
    assert PICTURE.is_file() and SIDECAR.is_file(), "run: python examples/make_report_image.py"
    return json.loads(SIDECAR.read_text(encoding="utf-8"))


def test_readme_picture_is_the_one_its_sidecar_describes(repo_root: Path):
    """The picture, its sidecar, the shipped weights and examples/expected/example.csv belong together."""
    sidecar = _sidecar()
    stale = "docs/report-example.png is stale: run python examples/make_report_image.py"
    assert sha256_of(PICTURE) == sidecar["image_sha256"], stale
    assert sidecar["weights"] == DEFAULT_WEIGHTS.name and sidecar["clip"] == "examples/example.mp4"
    shipped = json.loads((DEFAULT_WEIGHTS / "config.json").read_text(encoding="utf-8"))["model_sha256"]
    assert sidecar["model_sha256"] == shipped, stale
    assert sidecar["clip_sha256"] == sha256_of(repo_root / "examples" / "example.mp4"), stale
    assert "](docs/report-example.png)" in (repo_root / "README.md").read_text(encoding="utf-8")
    with open(repo_root / "examples" / "expected" / "example.csv", encoding="utf-8", newline="") as f:
        expected = [UtteranceRow.parse(r) for r in csv.DictReader(f)]
    drawn = sidecar["rows"]
    assert [r["text"] for r in drawn] == [r.text for r in expected]
    for row, exp in zip(drawn, expected):
        for name in ("sentiment", "text_score", "voice_score", "face_score"):
            assert row[name] == pytest.approx(getattr(exp, name), abs=0.05), (row["utterance"], name)
        assert row["polarity"] == exp.polarity


@pytest.mark.slow
def test_readme_picture_shows_what_the_shipped_weights_give(loaded_models, example_clip: Path):
    """A fresh run of the example with the shipped weights gives the scores the README's picture shows."""
    from pipeline import score_videos

    outcome, = score_videos([example_clip], models=loaded_models)
    options = OutputOptions()
    fresh = [UtteranceRow.of(outcome.result, u, options) for u in outcome.result.utterances]
    drawn = _sidecar()["rows"]
    assert [r["text"] for r in drawn] == [r.text for r in fresh]
    for row, got in zip(drawn, fresh):
        for name in ("sentiment", "text_score", "voice_score", "face_score"):
            assert row[name] == pytest.approx(getattr(got, name), abs=0.05), (
                f"utterance {row['utterance']} {name}: the picture shows {row[name]}, the weights give "
                f"{getattr(got, name)}; run python examples/make_report_image.py")
        assert row["polarity"] == got.polarity
