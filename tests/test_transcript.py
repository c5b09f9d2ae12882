"""Whisper (faster-whisper, tiny.en, int8) on real speech: words, timings, accuracy."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from bench.wer import word_error_rate
from extractors.media import SAMPLE_RATE_HZ, decode_audio
from extractors.transcript import AsrOptions, Transcriber
from tests.conftest import SHARED_DATA, requires_shared

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return Transcriber(AsrOptions(), tmp_path_factory.mktemp("cache"))


def check_word_invariants(transcript, duration_s: float) -> None:
    words = transcript.words
    starts = np.array([w.start_s for w in words])
    ends = np.array([w.end_s for w in words])
    assert np.isfinite(starts).all() and np.isfinite(ends).all()
    assert (ends >= starts).all()
    assert (np.diff(starts) >= 0).all(), "word starts go backwards"
    assert starts.min() >= 0 and ends.max() <= duration_s + 0.5
    assert all(0.0 <= w.probability <= 1.0 for w in words)


@pytest.mark.slow
def test_digital_silence_has_no_words(transcriber: Transcriber):
    transcript = transcriber.transcribe(np.zeros(3 * SAMPLE_RATE_HZ, np.float32))
    assert transcript.words == () and transcript.language == "en"


@pytest.mark.slow
@requires_shared
def test_grid_word_error_rate(transcriber: Transcriber, shared: Path, ffmpeg: Path):
    grid = shared / "data" / "clips" / "grid"
    rows = list(csv.DictReader(open(grid / "transcripts.csv")))
    rates = []
    for row in rows:
        audio = decode_audio(grid / row["path"], ffmpeg)
        transcript = transcriber.transcribe(audio)
        check_word_invariants(transcript, len(audio) / SAMPLE_RATE_HZ)
        rates.append(word_error_rate(row["transcript"], " ".join(w.text for w in transcript.words)))
    mean_wer = float(np.mean(rates))
    log.info("GRID tiny.en mean WER %.3f over %d clips", mean_wer, len(rates))
    assert len(rates) == 10
    assert mean_wer <= 0.25, f"GRID mean WER {mean_wer:.2f}"


@pytest.mark.slow
@requires_shared
def test_mosi_clip_close_to_manual_transcript(transcriber: Transcriber, shared: Path, ffmpeg: Path):
    clip = shared / "data" / "mosi" / "clips" / "Oz06ZWiO20M_6.mp4"
    manual = "and sucker punch is a failer but like a really ambitious weird the interesting idiosyncratic failure"
    audio = decode_audio(clip, ffmpeg)
    transcript = transcriber.transcribe(audio)
    check_word_invariants(transcript, len(audio) / SAMPLE_RATE_HZ)
    assert word_error_rate(manual, " ".join(w.text for w in transcript.words)) <= 0.3


@pytest.mark.slow
def test_example_clip_transcript(transcriber: Transcriber, example_clip: Path, repo_root: Path, ffmpeg: Path):
    sentences = (repo_root / "examples" / "sentences.txt").read_text().split("\n")
    audio = decode_audio(example_clip, ffmpeg)
    transcript = transcriber.transcribe(audio)
    check_word_invariants(transcript, len(audio) / SAMPLE_RATE_HZ)
    assert word_error_rate(" ".join(sentences), " ".join(w.text for w in transcript.words)) <= 0.2


def test_chunk_bounds_cover_audio_and_cut_in_silence():
    from extractors.transcript import chunk_bounds

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 100 * SAMPLE_RATE_HZ).astype(np.float32)
    audio[int(27.0 * SAMPLE_RATE_HZ): int(27.5 * SAMPLE_RATE_HZ)] = 0.0  # a pause before the 30 s mark
    bounds = chunk_bounds(audio, chunk_s=30.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # no gap, no overlap
    assert all(end - start <= 30 * SAMPLE_RATE_HZ for start, end in bounds)
    assert 27.0 <= bounds[0][1] / SAMPLE_RATE_HZ <= 27.5
    assert chunk_bounds(audio[:SAMPLE_RATE_HZ], chunk_s=30.0) == [(0, SAMPLE_RATE_HZ)]


@pytest.mark.slow
def test_chunked_transcription_matches_whole(tmp_path_factory, example_clip: Path, ffmpeg: Path,
                                             transcriber: Transcriber):
    chunked = Transcriber(AsrOptions(chunk_s=8.0, language_id_model=None), tmp_path_factory.mktemp("c"))
    audio = decode_audio(example_clip, ffmpeg)
    whole = transcriber.transcribe(audio)
    pieces = chunked.transcribe(audio)
    assert [w.text for w in pieces.words] == [w.text for w in whole.words]
    shifts = np.abs([a.start_s - b.start_s for a, b in zip(pieces.words, whole.words)])
    # Whisper times the first word after a cut loosely; the rest must agree closely
    assert np.median(shifts) < 0.1 and shifts.max() < 0.75
    check_word_invariants(pieces, len(audio) / SAMPLE_RATE_HZ)


#: German speech through the English-only model: the greedy text fails Whisper's checks and the
#: decoder falls back to sampling at higher temperatures (checked below, so the test proves it).
FALLBACK_CLIP = SHARED_DATA / "emodb" / "wav" / "03a01Fa.wav"


@pytest.mark.slow
@requires_shared
def test_decoding_repeats_exactly_when_whisper_falls_back_to_sampling(transcriber: Transcriber):
    from extractors.assets import resolve_ffmpeg

    audio = decode_audio(FALLBACK_CLIP, resolve_ffmpeg(), SAMPLE_RATE_HZ)
    segments, _ = transcriber.whisper.transcribe(audio, beam_size=1, word_timestamps=True, vad_filter=True,
                                                 condition_on_previous_text=False)
    assert max(s.temperature for s in segments) > 0, "the clip no longer triggers the sampling fallback"
    runs = [transcriber.transcribe(audio) for _ in range(3)]
    texts = {tuple((w.text, w.start_s, w.end_s, w.probability) for w in run.words) for run in runs}
    assert len(texts) == 1, f"same clip, different words: {texts}"


# Language of speech: identification first, then what the English recogniser heard (pipeline.languages).
@pytest.mark.parametrize(("guess", "word_probabilities", "english"), [
    (("en", 0.9, 0.9), None, True),                 # identified English: no decoding needed to decide
    (("nl", 0.45, 0.4), [0.93, 0.95, 0.9], True),   # short English clip, Dutch first: fluent English words
    (("cy", 0.78, 0.12), [0.88, 0.91], True),       # Welsh "first" at p 0.78 (refused before): fluent English
    (("de", 0.35, 0.22), [0.3, 0.5, 0.6], False),   # 1.4 s of German read as English before (p 0.35 < 0.5)
    (("es", 0.44, 0.2), [], False),                 # 2.2 s of Spanish was "no speech"; now not English
    (("de", 0.99, 0.001), None, False),             # certain German: refused before decoding
])
def test_speech_language_decision(guess, word_probabilities, english):
    from pipeline.languages import speech_language

    decision = speech_language(*guess, word_probabilities)
    assert decision.english is english
    if not english:
        assert decision.reason.startswith(f"speech identified as {guess[0]!r}"), decision.reason


def test_speech_language_waits_for_the_words_when_identification_hesitates():
    from pipeline.languages import speech_language

    decision = speech_language("fr", 0.6, 0.3, None)
    assert not decision.english and decision.reason == ""  # neither: decode, then decide


#: 1.4 s of German speech that Whisper base identifies as 'de' with p 0.35 only: the former rule
#: ("another language first with p >= 0.5") scored it as English.
SHORT_GERMAN = SHARED_DATA / "emodb" / "wav" / "09a05Lc.wav"


@pytest.mark.slow
@requires_shared
def test_short_german_clip_is_not_scored_as_english(loaded_models, tmp_path: Path):
    import wave

    from extractors.assets import resolve_ffmpeg
    from pipeline.config import PipelineConfig
    from pipeline.errors import UnsupportedLanguageError
    from pipeline.features import featurize

    audio = decode_audio(SHORT_GERMAN, resolve_ffmpeg(), SAMPLE_RATE_HZ)[: int(1.4 * SAMPLE_RATE_HZ)]
    clip = tmp_path / "kurz.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    with pytest.raises(UnsupportedLanguageError, match=r"speech identified as 'de'.*English only"):
        featurize(clip, PipelineConfig(), loaded_models)


@pytest.mark.slow
@requires_shared
def test_results_name_the_language_the_speech_was_read_in(loaded_models):
    """Scored speech says "en" with English's probability, whatever language identification put first
    (an English GRID clip was reported as 'da' although it was scored as English)."""
    from pipeline.config import PipelineConfig
    from pipeline.features import featurize

    clip = SHARED_DATA / "clips" / "grid" / "bbaf2n.mpg"
    features = featurize(clip, PipelineConfig(), loaded_models)
    assert features.status == "ok" and features.language == "en"
    audio = decode_audio(clip, loaded_models.ffmpeg, SAMPLE_RATE_HZ)
    assert features.language_probability == pytest.approx(
        loaded_models.transcriber.identify_language(audio).english_probability)
