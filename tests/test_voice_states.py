"""Whisper's encoder states kept from its own transcription pass (extractors.voice_states.StatesFromTranscription)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors.media import SAMPLE_RATE_HZ, decode_audio
from extractors.transcript import AsrOptions, Transcriber
from extractors.voice_states import STATE_WIDTH, STATES_RATE_HZ, StatesFromTranscription, VoiceStates

SR = SAMPLE_RATE_HZ


def numbered_window(n_frames: int, first: int = 0) -> np.ndarray:
    """A window's states whose row k holds the number first + k in every column."""
    return np.repeat(np.arange(first, first + n_frames, dtype=np.float32)[:, None], STATE_WIDTH, axis=1)


def test_each_frame_takes_the_state_of_its_place_in_the_joined_speech() -> None:
    """Frames of removed silences are placed as faster-whisper places a word there (with the chunk
    before them), frames before the first chunk take the first state, and a later window
    overwrites the frames from its start on, as the window their words were decoded from."""
    states = StatesFromTranscription(4 * SR)  # 4 s: 200 frames of 20 ms
    speech = [{"start": 1 * SR, "end": 2 * SR}, {"start": 3 * SR, "end": 4 * SR}]  # joined: 2 s
    states.piece(0, 4 * SR, speech)
    states.window(0.0, numbered_window(1500))
    got = states.track().values[:, 0]
    assert len(got) == 200 and states.track().rate_hz == STATES_RATE_HZ
    assert (got[:50] == 0).all(), "before the first chunk: the first joined frame"
    np.testing.assert_array_equal(got[50:100], np.arange(50))  # 1-2 s is joined 0-1 s
    np.testing.assert_array_equal(got[100:150], np.arange(50, 100))  # the silence, with the first chunk's offset
    np.testing.assert_array_equal(got[150:200], np.arange(50, 100))  # 3-4 s is joined 1-2 s

    states.window(1.5, numbered_window(1500, first=1000))  # a second window, 1.5 s into the joined speech
    got = states.track().values[:, 0]
    np.testing.assert_array_equal(got[50:100], np.arange(50))  # before it: untouched
    np.testing.assert_array_equal(got[175:200], np.arange(1000, 1025))


def test_pieces_are_placed_on_the_file_clock_and_a_piece_without_speech_stays_zero() -> None:
    states = StatesFromTranscription(3 * SR)
    states.piece(0, 1 * SR, [])  # no speech in the first second
    states.window(0.0, numbered_window(1500, first=7))  # nothing to place
    states.piece(1 * SR, 3 * SR, None)  # no VAD: the piece is heard as it is
    states.window(0.0, numbered_window(1500, first=1))
    got = states.track().values
    assert got.shape == (150, STATE_WIDTH)
    assert (got[:50] == 0).all()
    np.testing.assert_array_equal(got[50:, 0], np.arange(1, 101))
    with pytest.raises(ValueError, match="384 wide"):
        states.window(0.0, np.zeros((1500, 512), np.float32))


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return Transcriber(AsrOptions(), tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def example_audio(example_clip: Path, ffmpeg: Path) -> np.ndarray:
    return decode_audio(example_clip, ffmpeg)


@pytest.mark.slow
def test_own_vad_step_gives_faster_whispers_words(transcriber: Transcriber, example_audio: np.ndarray) -> None:
    """The transcriber runs the VAD itself (to place the windows in the file): the words, their
    times and probabilities are exactly those of faster-whisper's own ``vad_filter``, and the
    model's ``encode`` is itself again afterwards."""
    options = transcriber.options
    segments, _ = transcriber.whisper.transcribe(
        example_audio, language="en", beam_size=options.beam_size, temperature=list(options.temperatures),
        word_timestamps=True, vad_filter=True, vad_parameters={"min_silence_duration_ms": options.min_silence_ms},
        condition_on_previous_text=False)
    theirs = [(w.word.strip(), float(w.start), float(w.end), float(w.probability))
              for s in segments for w in s.words if w.word.strip()]
    kept = StatesFromTranscription(len(example_audio))
    words = transcriber.transcribe(example_audio, states=kept).words
    ours = [(w.text, w.start_s, w.end_s, w.probability) for w in words]
    assert len(ours) > 20 and ours == theirs
    assert "encode" not in vars(transcriber.whisper), "the encoder's output is no longer kept"
    values = kept.track().values
    speech = np.array([w[1] for w in ours])
    assert np.abs(values[(speech * STATES_RATE_HZ).astype(int)]).sum(axis=1).min() > 0, "a word without states"


@pytest.mark.slow
def test_states_of_speech_heard_whole_are_those_of_a_second_pass(transcriber: Transcriber,
                                                                example_audio: np.ndarray) -> None:
    """On a clip shorter than 30 s whose speech the VAD keeps whole (a training clip), the states
    kept from transcription are what ``VoiceStates.extract`` computes with a second encoder pass,
    but for the last mel frame that transcription leaves out."""
    clip = example_audio[int(0.112 * SR):int(6.288 * SR)]  # the example's first sentence, as the VAD cut it
    assert transcriber._speech(clip) == [{"start": 0, "end": len(clip)}]
    kept = StatesFromTranscription(len(clip))
    words = transcriber.transcribe(clip, states=kept).words
    ours, second = kept.track().values, VoiceStates(transcriber.whisper).extract(clip).values
    assert ours.shape == second.shape
    for w in words:
        rows = slice(int(w.start_s * STATES_RATE_HZ), int(np.ceil(w.end_s * STATES_RATE_HZ)))
        a, b = ours[rows].mean(axis=0), second[rows].mean(axis=0)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.1, w.text


@pytest.mark.slow
def test_every_word_of_a_long_file_has_the_states_of_its_window(transcriber: Transcriber,
                                                                example_audio: np.ndarray) -> None:
    """Past 30 s of speech Whisper encodes several windows, and past ``chunk_s`` the file is cut into
    pieces: each word's frames still get states (none left at zero), from more than one window."""
    audio = np.concatenate([example_audio] * 5)  # 82 s: two pieces of at most 60 s
    kept = StatesFromTranscription(len(audio))
    words = transcriber.transcribe(audio, states=kept).words
    values = kept.track().values
    assert kept.windows >= 3 and words[-1].end_s > 70
    for w in words:
        rows = values[int(w.start_s * STATES_RATE_HZ):int(np.ceil(w.end_s * STATES_RATE_HZ))]
        assert len(rows) and (np.abs(rows).sum(axis=1) > 0).all(), (w.text, w.start_s)


def test_weights_say_which_states_they_read() -> None:
    """Weights whose recipe read CREMA-D states kept from transcription get those; earlier weights (no
    such option in their recipe) get the second pass they were trained on, so their outputs do not move."""
    from extractors.voice_states import VoiceStatesOptions, states_kept_from_transcription, states_source

    def weights(**options: str) -> dict[str, object]:
        return {"training": {"options": options}}

    assert states_kept_from_transcription(weights(crema_d_states="transcription pass"))
    assert not states_kept_from_transcription(weights(crema_d_states="second pass"))
    assert not states_kept_from_transcription(weights()) and not states_kept_from_transcription({})
    assert states_source("tiny.en", VoiceStatesOptions()) == "transcription pass"
    assert states_source("base", VoiceStatesOptions()) == "second pass"  # another model transcribes
    assert states_source("tiny.en", VoiceStatesOptions(kept=False)) == "second pass"
    assert states_source("tiny.en", VoiceStatesOptions(enabled=False)) is None


def test_the_pipeline_reads_the_kind_from_the_weights_file_before_they_load(tmp_path: Path) -> None:
    """ASR decides whether to keep the states from the weights' config.json alone: the shipped weights
    (a second pass) say no; weights recording the transcription pass say yes; a missing file says no."""
    import json
    from dataclasses import replace

    from pipeline.config import PipelineConfig
    from pipeline.models import weights_keep_states

    shipped = PipelineConfig()
    assert not weights_keep_states(shipped)  # the shipped weights read second-pass states
    (tmp_path / "config.json").write_text(json.dumps({"voice_states_source": "transcription pass"}))
    assert weights_keep_states(replace(shipped, weights_dir=tmp_path))
    assert not weights_keep_states(replace(shipped, weights_dir=tmp_path / "missing"))


@pytest.mark.slow
def test_one_decision_keeps_the_states_for_extraction_and_for_the_weights() -> None:
    """Feature extraction (no weights loaded) keeps the states as its config says; a run with weights keeps
    them as the weights say, whatever the config: the shipped weights read a second pass."""
    from dataclasses import replace

    from pipeline.config import PipelineConfig
    from pipeline.extract import EXTRACT_PARTS
    from pipeline.models import Models

    config = PipelineConfig()
    second = replace(config, voice_states=replace(config.voice_states, kept=False))
    with Models.load(config, parts=("asr",)) as extracting, Models.load(second, parts=("asr",)) as second_pass:
        assert extracting.keeps_voice_states and not second_pass.keeps_voice_states
    assert "miar" not in EXTRACT_PARTS
    with Models.load(config, parts=("asr", "miar")) as running:
        assert not running.keeps_voice_states  # the shipped weights, config kept or not
