"""Models loaded while the first stages run (issue 20): ``Models.load(..., background=...)`` and the ``run`` path.

Every model is a stand-in that records which thread built it, so nothing here loads a model; gates
(``threading.Event``) make the order of the two threads certain, never a timing. What is checked: only
the first stage's part is loaded before ``Models.load`` returns; a part still loading is waited for where
it is read; a part that fails to load in the background raises its own error there, in ``wait()`` and out
of ``run`` (the same one line and exit code as a failed ``Models.load``, nothing written); ``close()``
stops a background load; ``Models.load`` without ``background`` loads everything before it returns.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from extractors.records import FeatureTrack, Transcript
from extractors.transcript import LanguageGuess
from model.errors import CheckpointError
from pipeline.config import PipelineConfig
from pipeline.models import ALL_PARTS, FIRST_STAGE_PARTS, Models

#: No PyTorch thread setting, so not even PyTorch is imported by these loads.
CONFIG = dataclasses.replace(PipelineConfig(), torch_threads=0)
LATER = tuple(part for part in ALL_PARTS if part not in FIRST_STAGE_PARTS)


class StandIns:
    """Stand-ins for the four model constructors; ``built`` lists (part, thread name) as each finishes."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str]] = []
        self.closed: list[str] = []
        self.face_gate: threading.Event | None = None  # the face "loads" until it is set
        self.miar_error: Exception | None = None
        self.asr_ran = threading.Event()  # set when the stand-in Whisper transcribes
        self.face_saw_asr_running: bool | None = None

    def record(self, part: str) -> None:
        self.built.append((part, threading.current_thread().name))

    def parts(self) -> list[str]:
        return [part for part, _ in self.built]


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> StandIns:
    import extractors.face
    import extractors.text
    import extractors.transcript
    from pipeline import models as models_mod

    made = StandIns()

    class Whisper:
        options = SimpleNamespace(model="tiny.en")

        def __init__(self, options: object, cache_dir: object) -> None:
            made.record("asr")

        def identify_language(self, audio: np.ndarray) -> LanguageGuess:
            return LanguageGuess("en", 1.0, 1.0)

        def transcribe(self, audio: np.ndarray, progress: object, language: str, states: object = None) -> Transcript:
            made.asr_ran.set()
            return Transcript((), "en", 1.0, len(audio) / 16000, "tiny.en")  # no words: nothing to score

    class Face:
        def __init__(self, options: object) -> None:
            # a guard against hanging the test run, not a timing: a gate never opened fails the test
            if made.face_gate is not None and not made.face_gate.wait(timeout=300):
                raise AssertionError("the face models were loaded before their gate opened")
            made.record("face")

        def extract(self, frames: Iterator[object], progress: object = None,
                    rate_hz: float | None = None) -> FeatureTrack:
            from extractors.face import COLUMNS

            frames.close()  # nothing decoded: the track of a video without a face
            return FeatureTrack("face", np.zeros(0), np.zeros((0, len(COLUMNS)), np.float32), COLUMNS,
                                np.zeros(0, bool), 4.0)

        def close(self) -> None:
            made.closed.append("face")

    class Text:
        def __init__(self, options: object) -> None:
            made.record("text")

    def load_miar(config: PipelineConfig) -> SimpleNamespace:
        if made.miar_error is not None:
            raise made.miar_error
        made.record("miar")
        # descriptors only: no voice states to build
        return SimpleNamespace(config={"audio_columns": ["f0_mean"], "text_encoder": "stand-in", "max_tokens": 128})

    monkeypatch.setattr(extractors.transcript, "Transcriber", Whisper)
    monkeypatch.setattr(extractors.face, "FaceExtractor", Face)
    monkeypatch.setattr(extractors.face, "import_libraries", lambda: None)
    monkeypatch.setattr(extractors.text, "TextEncoder", Text)
    monkeypatch.setattr(models_mod, "_load_miar", load_miar)
    return made


def test_models_load_without_background_loads_everything_before_it_returns(stand_ins: StandIns):
    with Models.load(CONFIG) as models:
        assert stand_ins.parts() == ["miar", "face", "asr", "text"]  # the order Models.load always took
        assert {thread for _, thread in stand_ins.built} == {threading.current_thread().name}
        assert all(models.has(part) for part in ALL_PARTS) and models.voice_states is None
        assert models.wait() is models
        copy = dataclasses.replace(models, face=None)  # the holder is still a plain dataclass
        assert copy.face is None and copy.miar is models.miar and not copy.has("face")
    assert stand_ins.closed == ["face"] and models.face is None and models.miar is None


def test_background_parts_load_after_the_first_stage_part_and_are_waited_for_where_read(stand_ins: StandIns):
    stand_ins.face_gate = threading.Event()
    models = Models.load(CONFIG, background=LATER)
    try:
        assert stand_ins.built[0] == ("asr", threading.current_thread().name)  # Whisper: before load returned
        assert "face" not in stand_ins.parts()  # still loading (held at the gate)
        assert all(models.has(part) for part in ALL_PARTS)  # loading counts as there, and asking never waits
        assert models.transcriber is not None  # loaded already: read at once

        read: list[object] = []
        reader = threading.Thread(target=lambda: read.append(models.face))
        reader.start()
        reader.join(0.2)
        assert reader.is_alive() and not read  # the face read waits for the face load...
        stand_ins.face_gate.set()
        reader.join()
        assert type(read[0]).__name__ == "Face"  # ...and gets the loaded model
        assert models.wait() is models and models.text_encoder is not None and models.miar is not None
        # the weights first (they decide the voice states and the text options), then as the stages read them
        assert stand_ins.parts() == ["asr", "miar", "face", "text"]
        assert {thread for part, thread in stand_ins.built if part != "asr"} == {"models-load"}
    finally:
        stand_ins.face_gate.set()
        models.close()
    assert stand_ins.closed == ["face"]


def test_a_part_failing_in_the_background_raises_its_error_where_read_and_in_wait(stand_ins: StandIns):
    stand_ins.miar_error = CheckpointError("weights/broken/config.json: dims.d_model is 40000")
    with Models.load(CONFIG, background=LATER) as models:
        assert models.has("miar")  # the check before the work does not wait, so it cannot fail
        for read in (lambda: models.miar, lambda: models.face, lambda: models.text_encoder, models.wait):
            # the same error, also for the parts after it (they follow the weights), and no read hangs
            with pytest.raises(CheckpointError, match="dims.d_model is 40000"):
                read()
        assert models.transcriber is not None  # what loaded before still reads
    assert stand_ins.parts() == ["asr"] and stand_ins.closed == []


def test_close_stops_a_background_load_after_the_part_being_loaded(stand_ins: StandIns):
    stand_ins.face_gate = threading.Event()
    models = Models.load(CONFIG, background=LATER)
    closing = threading.Thread(target=models.close)
    closing.start()  # the face is loading: close waits for it, then starts nothing more
    stand_ins.face_gate.set()
    closing.join()
    assert stand_ins.parts() == ["asr", "miar", "face"]  # no text encoder was loaded
    assert stand_ins.closed == ["face"] and models.face is None and models.text_encoder is None


def test_models_load_refuses_background_parts_it_does_not_load(stand_ins: StandIns):
    with pytest.raises(ValueError, match=r"background parts \['face'\]"):
        Models.load(CONFIG, parts=("asr", "text"), background=("face",))
    assert stand_ins.built == []


@pytest.mark.slow
def test_run_decodes_and_transcribes_while_the_other_models_load(stand_ins: StandIns, example_clip: Path,
                                                                 tmp_path: Path):
    """``python -m pipeline run`` waits for Whisper only: the face models here finish loading only
    once ASR has run on the clip (a load before the first stage would wait at the gate forever)."""
    from pipeline.cli import main

    stand_ins.face_gate = stand_ins.asr_ran
    out = tmp_path / "out"
    assert main(["run", str(example_clip), "--out", str(out), "--no-progress"]) == 0
    assert stand_ins.asr_ran.is_set() and stand_ins.parts() == ["asr", "miar", "face", "text"]
    assert (out / "example.csv").is_file()  # no words from the stand-in: a no_speech output


@pytest.mark.slow
def test_a_background_load_error_fails_run_as_a_failed_load_did(stand_ins: StandIns, example_clip: Path,
                                                              tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The error of weights that fail while the first input is transcribed is the run's one-line error and
    exit code 1, as when ``Models.load`` raised it up front: not a failed input, and nothing is written."""
    from pipeline.cli import main

    stand_ins.miar_error = CheckpointError("weights/broken/model.pt is empty (0 bytes): the weights were not written")
    second = tmp_path / "second.mp4"
    shutil.copyfile(example_clip, second)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        code = main(["run", str(example_clip), str(second), "--out", str(out), "--no-progress"])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["weights/broken/model.pt is empty (0 bytes): the weights were not written"]
    assert sorted(p.name for p in out.iterdir()) == []  # no output, no summary row for an input
    assert stand_ins.parts() == ["asr"]


@pytest.mark.slow
def test_a_process_that_loaded_models_freezes_its_heap_at_exit(tmp_path: Path):
    """Library callers exit without the interpreter walking every PyTorch object again (the CLI freezes
    itself); nothing is frozen before the exit hooks run."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = ("import atexit, gc\n"
            "from pipeline import Models, PipelineConfig\n"
            "with Models.load(PipelineConfig(), parts=('text', 'miar')):\n"
            "    pass\n"
            "before = gc.get_freeze_count()\n"
            "atexit._run_exitfuncs()\n"
            "print(before, gc.get_freeze_count() > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True"]
