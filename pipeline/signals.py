"""Readable per-utterance signals: the measured evidence written beside each score.

These are summaries for people (is the face visible, is the voice loud or smiling),
computed from the same aligned frames the model sees, by column name.
"""

from __future__ import annotations

import numpy as np

from extractors import face as face_columns
from extractors import voice as voice_columns
from pipeline.records import AlignedUtterance, Signals

__all__ = ["utterance_signals"]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def utterance_signals(aligned: AlignedUtterance) -> Signals:
    """Summarise one aligned utterance for the CSV."""
    words = aligned.utterance.words
    audio = aligned.audio_frames
    vcol = voice_columns.COLUMNS.index
    voiced = audio[:, vcol("voiced")] > 0.5 if len(audio) else np.zeros(0, bool)
    face = aligned.vision_frames[aligned.vision_frames_present]
    fcol = face_columns.COLUMNS.index
    return Signals(
        n_words=len(words),
        asr_word_prob=_mean(np.array([w.probability for w in words])),
        face_coverage=_mean(aligned.vision_frames_present.astype(np.float64)),
        voiced_share=_mean(voiced.astype(np.float64)),
        f0_mean_hz=_mean(audio[voiced, vcol("f0_hz")]) if len(audio) else 0.0,
        loudness_db=_mean(audio[:, vcol("rms_db")]) if len(audio) else 0.0,
        smile=_mean(face[:, [fcol("bs_mouthSmileLeft"), fcol("bs_mouthSmileRight")]]) if len(face) else 0.0,
        brow_down=_mean(face[:, [fcol("bs_browDownLeft"), fcol("bs_browDownRight")]]) if len(face) else 0.0,
    )
