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
from model.schema import NEUTRAL_BAND, polarity_of
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError, UnsupportedLanguageError
from pipeline.languages import ENGLISH, LANGUAGE_NAMES, TextLanguage, check_text_language
from pipeline.models import Models
from pipeline.windows import pool_rows, text_windows

__all__ = ["TextScore", "TextScorer", "score_texts", "language_refusal", "check_texts"]

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
    """One text as the checked text path saw it: the row ``score_texts`` and ``python -m pipeline text`` give.

    Attributes:
        sentiment: Score in [-3, 3]; None when the text was not scored (it looks like another
            language and English was not forced).
        polarity: "negative", "neutral" or "positive" of ``sentiment`` (``model.schema.polarity_of``
            with the scorer's neutral band); "" when not scored.
        language: The language check's result: "en", or the language the text looks like
            (``pipeline.languages.TextLanguage.language``); kept when English was forced.
        evidence: Why the check named another language ("" for English).
        windows: Word windows pooled into the score (1 unless the text is longer than the
            encoder's limit; 0 when not scored).
    """

    sentiment: float | None
    polarity: str
    language: str
    evidence: str = ""
    windows: int = 1


@dataclass
class TextScorer:
    """Scores texts with loaded models (holds models and the fixed neutral band, no per-call state).

    Attributes:
        models: Models with at least the parts "text" and "miar" (a full ``Models`` does too).
        neutral_band: Scores with ``abs(score) < neutral_band`` are neutral (``OutputOptions.neutral_band``).
    """

    models: Models
    neutral_band: float = NEUTRAL_BAND

    @classmethod
    def load(cls, config: PipelineConfig) -> TextScorer:
        """Load the text encoder and the MIAR weights named by ``config``.

        Raises:
            ModelNotFoundError: The encoder is not installed.
            CheckpointError: The weights are missing, corrupt, or made for another encoder.
        """
        return cls(Models.load(config, parts=TEXT_PARTS), config.output.neutral_band)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [-3, 3], one per text: (N,) float32. No language check (``score_checked`` has one).

        Raises:
            TypeError: ``texts`` is one str or bytes, or holds something that is not a str.
            ValueError: A text has no words after normalisation (nothing to score).
        """
        check_texts(texts)
        return self._score_windows(texts)[0]

    def score_checked(self, texts: Sequence[str], language: str | None = None) -> list[TextScore]:
        """Check each text's language, then score the English ones (every one with ``language="en"``).

        Args:
            texts: Sentences or longer texts.
            language: None: a text that looks like another language is not scored (its
                ``sentiment`` is None). "en": every text is scored as English; the check's
                result is still reported.

        Raises:
            TypeError: ``texts`` is one str or bytes, or holds something that is not a str.
            ValueError: A text has no words after normalisation.
            PipelineError: ``language`` is not None or "en".
        """
        checks = _checked_languages(texts, language)
        scored = [i for i, check in enumerate(checks) if language == ENGLISH or check.is_english]
        scores, windows = self._score_windows([texts[i] for i in scored]) if scored else (np.zeros(0), [])
        out = [TextScore(None, "", check.language, check.evidence, 0) for check in checks]
        for i, score, n in zip(scored, scores, windows):
            sentiment = float(score)
            out[i] = TextScore(sentiment, polarity_of(sentiment, self.neutral_band), checks[i].language,
                               checks[i].evidence, n)
        return out

    def _score_windows(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """(N,) float32 scores and the number of windows of each text (``pipeline.windows``).

        A text that fits the encoder is one window: the samples of a batch of such texts are
        made and scored exactly as before windows existed. Longer texts add their later windows
        after every text's first, so the first windows' batches stay as they were.
        """
        from model.batch import SampleInput  # PyTorch: imported once the models are (``Models.load``)

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
                language: str | None = None) -> list[TextScore]:
    """One row per text from the shipped weights' text path: sentiment in [-3, 3], polarity, language.

    Loads the encoder and weights on every call: for many calls, keep a ``TextScorer``.
    Texts longer than the encoder's limit are scored over overlapping windows, pooled.

    Args:
        texts: Sentences or longer texts (any case and punctuation; normalised as ASR words are):
            a list of str, even for one text (``score_texts(["I loved it"])``).
        config: Which weights, encoder and neutral band; defaults to ``PipelineConfig()``.
        language: None checks every text's language first and refuses the lot if one looks
            like another language; "en" scores every text as English.

    Returns:
        ``TextScore`` per text, in order (every ``sentiment`` set: nothing is left unscored).

    Raises:
        TypeError: ``texts`` is one str or bytes (a str is a sequence of characters), or holds
            something that is not a str; raised before any model loads, naming the item.
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
        return scorer.score_checked(texts, language=ENGLISH)  # checked above: every text is to be scored


def check_texts(texts: object) -> None:
    """Refuse what is not a sequence of str, before any model loads.

    Raises:
        TypeError: ``texts`` is one str or bytes, or is not a sequence, or item ``i`` is not a str
            (the message names ``i``, its type and the fix).
    """
    if isinstance(texts, str):
        raise TypeError(f"texts is one str ({_shown(texts)}), and a str is a sequence of characters: pass a "
                        f"list of texts, e.g. [{_shown(texts)}] to score it as one text")
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts is bytes: decode it (data.decode('utf-8')) and pass a list of str, "
                        "e.g. [data.decode('utf-8')]")
    if not isinstance(texts, Sequence):
        raise TypeError(f"texts is a {type(texts).__name__}: pass a list of str")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            fix = ("decode it (.decode('utf-8'))" if isinstance(text, (bytes, bytearray))
                   else "pass text as str (str(x) if that is what you mean)")
            raise TypeError(f"text {i} is {type(text).__name__} ({_shown(text)}), not str: {fix}")


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _checked_languages(texts: Sequence[str], language: str | None) -> list[TextLanguage]:
    check_texts(texts)
    if language not in TEXT_LANGUAGES:
        raise PipelineError(f"language {language!r}: the text path takes None (check each text) or 'en' "
                            "(score every text as English); the model reads English only")
    return [check_text_language(t) for t in texts]
