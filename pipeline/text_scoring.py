"""The text path of the shipped model: sentences in, sentiment out (voice and face masked).

For users who already have transcripts (or want to check what the words alone say):
``score_texts(["i loved it", "it was awful"])`` or ``python -m pipeline text FILE``.
The same normalisation, encoder and weights as the video pipeline are used, so a
sentence scores the same here as when Whisper recognises exactly those words.

Long texts are not cut: a text longer than the encoder's limit (128 tokens, about 100 words) is
scored over overlapping word windows whose scores are pooled (``pipeline.windows``); a text that
fits is one window, scored as it always was.

The model reads English only. ``score_texts`` and ``TextScorer.score_checked`` run a light
language check on every text (``pipeline.languages.check_text_language``) and refuse texts that
look like another language unless told the text is English (``language="en"``), as the video path
refuses speech identified as another language unless ``--language en``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractors.text import normalise_text
from model.batch import SampleInput
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError, UnsupportedLanguageError
from pipeline.languages import ENGLISH, LANGUAGE_NAMES, TextLanguage, check_text_language
from pipeline.models import Models
from pipeline.windows import pool_rows, text_windows

__all__ = ["TextScore", "TextScorer", "score_texts", "language_refusal"]

log = logging.getLogger(__name__)

#: The model parts the text path needs.
TEXT_PARTS: tuple[str, ...] = ("text", "miar")
#: Windows encoded and scored at a time: bounds memory for long texts (a window's token features are up to
#: 128 x 384 float32, 192 KB). A multiple of the encoder's and the model's batch sizes (32, 64), so chunking
#: never changes a batch and short texts score as they did in one pass.
WINDOWS_AT_ONCE = 256
#: ``language`` values the text path takes: None checks each text, "en" scores every text as English.
TEXT_LANGUAGES: tuple[str | None, ...] = (None, ENGLISH)


@dataclass(frozen=True)
class TextScore:
    """One text as the checked text path saw it.

    Attributes:
        sentiment: Score in [-3, 3]; None when the text was not scored (it looks like another
            language and English was not forced).
        language: The language check's result: "en", or the language the text looks like
            (``pipeline.languages.TextLanguage.language``); kept when English was forced.
        evidence: Why the check named another language ("" for English).
        windows: Word windows pooled into the score (1 unless the text is longer than the
            encoder's limit; 0 when not scored).
    """

    sentiment: float | None
    language: str
    evidence: str = ""
    windows: int = 1


@dataclass
class TextScorer:
    """Scores texts with loaded models (holds models only).

    Attributes:
        models: Models with at least the parts "text" and "miar" (a full ``Models`` does too).
    """

    models: Models

    @classmethod
    def load(cls, config: PipelineConfig) -> TextScorer:
        """Load the text encoder and the MIAR weights named by ``config``.

        Raises:
            ModelNotFoundError: The encoder is not installed.
            CheckpointError: The weights are missing, corrupt, or made for another encoder.
        """
        return cls(Models.load(config, parts=TEXT_PARTS))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [-3, 3], one per text: (N,) float32. No language check (``score_checked`` has one).

        Raises:
            ValueError: A text has no words after normalisation (nothing to score).
        """
        return self._score_windows(texts)[0]

    def score_checked(self, texts: Sequence[str], language: str | None = None) -> list[TextScore]:
        """Check each text's language, then score the English ones (every one with ``language="en"``).

        Args:
            texts: Sentences or longer texts.
            language: None: a text that looks like another language is not scored (its
                ``sentiment`` is None). "en": every text is scored as English; the check's
                result is still reported.

        Raises:
            ValueError: A text has no words after normalisation.
            PipelineError: ``language`` is not None or "en".
        """
        checks = _checked_languages(texts, language)
        scored = [i for i, check in enumerate(checks) if language == ENGLISH or check.is_english]
        scores, windows = self._score_windows([texts[i] for i in scored]) if scored else (np.zeros(0), [])
        out = [TextScore(None, check.language, check.evidence, 0) for check in checks]
        for i, score, n in zip(scored, scores, windows):
            out[i] = TextScore(float(score), checks[i].language, checks[i].evidence, n)
        return out

    def _score_windows(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """(N,) float32 scores and the number of windows of each text (``pipeline.windows``).

        A text that fits the encoder is one window: the samples of a batch of such texts are
        made and scored exactly as before windows existed. Longer texts add their later windows
        after every text's first, so the first windows' batches stay as they were.
        """
        encoder, miar = self.models.text_encoder, self.models.miar
        if encoder is None or miar is None:
            raise ValueError(f"TextScorer: Models loaded without {list(TEXT_PARTS)}")
        word_lists = [normalise_text(t).split() for t in texts]
        empty = [i for i, words in enumerate(word_lists) if not words]
        if empty:
            raise ValueError(f"text {empty[0]} has no words to score: {texts[empty[0]]!r}")
        plans = [text_windows(words, encoder) for words in word_lists]  # (windows, weights) per text
        later = [(i, start, end) for i, (windows, _) in enumerate(plans) for start, end in windows[1:]]
        spans = [(i, *windows[0]) for i, (windows, _) in enumerate(plans)] + later
        window_scores = np.zeros(len(spans), np.float32)
        for at in range(0, len(spans), WINDOWS_AT_ONCE):
            chunk = spans[at:at + WINDOWS_AT_ONCE]
            tokens = encoder.encode_batch([word_lists[i][start:end] for i, start, end in chunk])
            samples = [SampleInput(text=t.values, text_mask=np.ones(len(t.tokens), dtype=bool)) for t in tokens]
            window_scores[at:at + len(chunk)] = miar.predict(samples)
        if not later:
            return window_scores, [1] * len(texts)
        rows: list[list[int]] = [[i] for i in range(len(texts))]  # each text's rows in window_scores, in order
        for row, (i, _, _) in enumerate(later, start=len(texts)):
            rows[i].append(row)
        scores = np.array(pool_rows(window_scores, rows, [weights for _, weights in plans]), np.float32)
        return scores, [len(windows) for windows, _ in plans]

    def close(self) -> None:
        self.models.close()

    def __enter__(self) -> TextScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def language_refusal(what: str, language: str, evidence: str) -> str:
    """The start of the one-line message for a text the language check refuses.

    Args:
        what: Which text ("text 3", "notes.txt:12").
        language: What the check says it looks like (``TextLanguage.language``).
        evidence: Why (``TextLanguage.evidence``).
    """
    name = LANGUAGE_NAMES.get(language, language)
    return f"{what} looks like {name} ({language!r}: {evidence}); the sentiment model reads English only"


def score_texts(texts: Sequence[str], config: PipelineConfig | None = None, *,
                language: str | None = None) -> list[float]:
    """Sentiment in [-3, 3] for each text, from the shipped weights' text path.

    Loads the encoder and weights on every call: for many calls, keep a ``TextScorer``.
    Texts longer than the encoder's limit are scored over overlapping windows, pooled.

    Args:
        texts: Sentences or longer texts (any case and punctuation; normalised as ASR words are).
        config: Which weights and encoder; defaults to ``PipelineConfig()``.
        language: None checks every text's language first and refuses the lot if one looks
            like another language; "en" scores every text as English.

    Raises:
        UnsupportedLanguageError: A text looks like another language (``language`` None); raised
            before any model loads, naming the first such text.
        PipelineError: ``language`` is not None or "en".
        ValueError: A text has no words to score.
    """
    checks = _checked_languages(texts, language)
    refused = [i for i, check in enumerate(checks) if not check.is_english]
    if refused and language is None:
        first = checks[refused[0]]
        more = f"; {len(refused) - 1} more text{'s' if len(refused) > 2 else ''} too" if len(refused) > 1 else ""
        raise UnsupportedLanguageError(f"{language_refusal(f'text {refused[0]}', first.language, first.evidence)} "
                                       f"(language='en' scores it anyway){more}")
    if refused:
        log.info("%d of %d texts look like another language; scored as English (language='en')",
                 len(refused), len(texts))
    if not texts:
        return []
    with TextScorer.load(config or PipelineConfig()) as scorer:
        return [float(s) for s in scorer.score(texts)]


def _checked_languages(texts: Sequence[str], language: str | None) -> list[TextLanguage]:
    if language not in TEXT_LANGUAGES:
        raise PipelineError(f"language {language!r}: the text path takes None (check each text) or 'en' "
                            "(score every text as English); the model reads English only")
    return [check_text_language(t) for t in texts]
