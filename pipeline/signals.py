"""Readable per-utterance signals: the measured evidence written beside each score.

These are summaries for people (is the face visible, is the voice loud or smiling),
computed from the same aligned frames the model sees, by column name. What was not
observed in the utterance is None (an empty CSV cell), never 0: a wav has no face to
measure, a whispered utterance no pitch.
"""

from __future__ import annotations

import numpy as np

from extractors import face as face_columns
from extractors import voice as voice_columns
from pipeline.records import AlignedUtterance, Signals

__all__ = ["utterance_signals"]


def _mean(values: np.ndarray) -> float | None:
    """Mean of ``values``; None when there is none (not observed, which is not 0)."""
    return float(values.mean()) if values.size else None


def utterance_signals(aligned: AlignedUtterance) -> Signals:
    """Summarise one aligned utterance for the CSV (None for what was not observed in it)."""
    words = aligned.utterance.words
    audio = aligned.audio_frames
    vcol = voice_columns.COLUMNS.index
    voiced = audio[:, vcol("voiced")] > 0.5
    face = aligned.vision_frames[aligned.vision_frames_present]
    fcol = face_columns.COLUMNS.index
    return Signals(
        n_words=len(words),
        asr_word_prob=float(np.mean([w.probability for w in words])) if words else 0.0,
        face_coverage=_mean(aligned.vision_frames_present.astype(np.float64)),
        voiced_share=_mean(voiced.astype(np.float64)),
        f0_mean_hz=_mean(audio[voiced, vcol("f0_hz")]),
        loudness_db=_mean(audio[:, vcol("rms_db")]),
        smile=_mean(face[:, [fcol("bs_mouthSmileLeft"), fcol("bs_mouthSmileRight")]]),
        brow_down=_mean(face[:, [fcol("bs_browDownLeft"), fcol("bs_browDownRight")]]),
    )
