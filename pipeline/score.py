"""Scoring a video end to end: the library API the CLI is a thin layer over.

    config = PipelineConfig()
    with Models.load(config) as models:          # every model loaded once
        result = score_video(Path("clip.mp4"), config, models)

``score_video`` is the stage sequence (``pipeline.features.featurize``) followed by the
model: the fused score of each utterance and what each modality says on its own
(``LoadedMiar.predict_readings``). Stages, each timed in ``VideoResult.stage_seconds``:
decode (probe + audio), asr, voice, face (frames are streamed, never all in memory; runs
beside asr on a worker thread), text, align, model.

An utterance longer than the text encoder's limit (128 tokens) is not cut: it is scored over
overlapping word windows, each with the voice and face of its own words, and the window
scores and readings are pooled (``pipeline.windows``). Utterances that fit are one window.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from model.schema import MODALITIES, polarity_of
from pipeline.config import PipelineConfig
from pipeline.features import Progress, featurize, window_inputs
from pipeline.models import Models
from pipeline.records import UtteranceScore, VideoResult
from pipeline.signals import utterance_signals
from pipeline.windows import pool_rows

__all__ = ["Progress", "score_video"]


def score_video(
    path: Path, config: PipelineConfig, models: Models, progress: Progress | None = None
) -> VideoResult:
    """Score every utterance of one video (or audio file).

    Args:
        path: A video or audio file.
        config: Stage options.
        models: Loaded models (``Models.load(config)``, every part).
        progress: Optional callback, see ``Progress``.

    Returns:
        The result; ``status == "no_speech"`` with no utterances (and no language) when nothing
        was said.

    Raises:
        MediaError: The file cannot be read as media.
        NoAudioTrackError: The file has no audio, so there is nothing to transcribe.
        UnsupportedLanguageError: The speech is confidently not English.
        ValueError: ``models`` lacks a part (loaded with fewer than ``ALL_PARTS``).
    """
    if not models.has("miar"):  # loaded, or loading in the background: waited for at the model stage
        raise ValueError("score_video: Models loaded without 'miar' (Models.load(config) loads every part)")
    features = featurize(path, config, models, progress)
    seconds = dict(features.stage_seconds)
    scores: tuple[UtteranceScore, ...] = ()
    used: tuple[str, ...] = ()
    if features.status == "ok":
        assert models.text_encoder is not None  # featurize checked it
        started = time.perf_counter()
        windows = window_inputs(features.aligned, features.samples, models.text_encoder)
        seconds["text"] = seconds.get("text", 0.0) + time.perf_counter() - started
        started = time.perf_counter()
        miar = models.miar
        assert miar is not None  # checked above
        seconds["models_wait"] = seconds.get("models_wait", 0.0) + time.perf_counter() - started
        started = time.perf_counter()
        samples = [sample for inputs, _ in windows for sample in inputs]
        window_sentiments = miar.predict(samples)
        window_readings = miar.predict_readings(samples)  # (K, 3), NaN where a modality is absent
        bounds = np.cumsum([0] + [len(inputs) for inputs, _ in windows])
        rows = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]  # each utterance's windows, in turn
        weights = [w for _, w in windows]
        sentiments = pool_rows(window_sentiments, rows, weights)
        readings = np.stack(pool_rows(window_readings, rows, weights))  # (N, 3)
        seconds["model"] = time.perf_counter() - started
        if progress is not None:
            progress("model", features.duration_s, features.duration_s)
        band = config.output.neutral_band
        scores = tuple(
            UtteranceScore(a.utterance, float(s), polarity_of(float(s), band), utterance_signals(a),
                           *(None if np.isnan(r) else float(r) for r in row))
            for a, s, row in zip(features.aligned, sentiments, readings)
        )
        used = tuple(m for j, m in enumerate(MODALITIES) if not np.isnan(readings[:, j]).all())
    spoke = features.status == "ok"
    return VideoResult(
        media=features.media, status=features.status, language=features.language if spoke else "",
        language_probability=features.language_probability if spoke else None, asr_model=features.asr_model,
        weights=config.weights_dir.name, modalities_used=used,
        face_coverage=features.face_coverage if features.media.has_video else None, utterances=scores,
        stage_seconds=seconds, warnings=features.warnings,
    )

