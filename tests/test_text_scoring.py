"""The text path: ``TextScorer``, ``score_texts`` and ``python -m pipeline text``: long texts over
windows, the language check."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from pipeline import score_texts
from pipeline.errors import PipelineError, UnsupportedLanguageError
from pipeline.languages import check_text_language
from pipeline.models import Models
from pipeline.text_scoring import TextScorer

#: Sentences the check must call another language (each a line a user could feed by mistake).
NOT_ENGLISH = {
    "de": ["Der Film war langweilig und viel zu lang.", "Ich habe mich sehr über das Geschenk gefreut.",
           "Das ist nicht gut.", "Es war ein schöner Abend mit Freunden.", "Ich weiß nicht, was ich sagen soll."],
    "es": ["Me encantó la película, es maravillosa.", "El servicio fue terrible y la comida estaba fría.",
           "Es un producto excelente, lo recomiendo.", "Estoy muy contento con la compra.",
           "La verdad es que no vale la pena."],
    "fr": ["J'ai adoré ce film, il est magnifique.", "Le service était lent et la nourriture froide.",
           "Ce n'est pas terrible.", "C'est le meilleur concert de ma vie.", "Nous sommes très déçus."],
    "zh": ["这部电影太无聊了。", "我非常喜欢这个产品。", "服务很差", "非常好！"],
    "ja": ["この映画はとても面白かった。"],
    "ru": ["Фильм был отличный."],
}
#: English the check must leave alone: sentences, short answers, numbers, speech as ASR writes it,
#: English with a foreign name or phrase in it.
ENGLISH = [
    "I loved this movie, it was wonderful!", "The meeting starts at 3 pm in room 204.", "yes", "ok", "no way",
    "Yeah.", "Nope!", "42", "3.5 / 5", "um i i really liked it like it was uh it was great",
    "so uh yeah it was it was kind of terrible honestly", "you know i i think it's uh pretty amazing actually",
    "anyhow it was really good", "they didnt really do a whole bunch of background info",
    "La La Land was great", "He said c'est la vie and left.", "The café in Zürich was lovely.",
    "Die Hard is the best Christmas movie.", "I love Beyoncé.", "Pokémon Go is fun", "I love 北京 so much",
]


@pytest.mark.parametrize("language", NOT_ENGLISH)
def test_other_languages_are_named(language: str):
    for text in NOT_ENGLISH[language]:
        check = check_text_language(text)
        assert check.language == language and not check.is_english, (text, check)
        assert check.evidence


@pytest.mark.parametrize("text", ENGLISH)
def test_english_short_answers_numbers_and_speech_pass(text: str):
    assert check_text_language(text).language == "en"


def test_score_texts_refuses_another_language_before_loading_models(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("models were loaded")

    monkeypatch.setattr(Models, "load", refuse)
    with pytest.raises(UnsupportedLanguageError, match=r"text 1 looks like German \('de': .*English only "
                                                       r"\(language='en' scores it anyway\); 1 more text too"):
        score_texts(["what a day", "Das ist nicht gut.", "Das war sehr schlecht."])
    with pytest.raises(PipelineError, match="English only"):
        score_texts(["what a day"], language="de")


@pytest.fixture(scope="module")
def scorer(loaded_models: object) -> TextScorer:
    """A scorer on conftest's session ``loaded_models`` (loaded once per test run)."""
    return TextScorer(loaded_models)


@pytest.mark.slow
def test_clear_sentiment_is_ordered(scorer: TextScorer):
    scores = scorer.score(["I loved this movie, it was wonderful!", "this was a terrible boring waste of time"])
    assert scores.shape == (2,) and all(-3.0 <= s <= 3.0 for s in scores)
    assert scores[0] > 1.0 and scores[1] < -1.0


@pytest.mark.slow
def test_score_texts_loads_the_same_model_and_gives_rows_with_polarity(scorer: TextScorer):
    texts = ["I loved it", "what a wonderful day", "I hate this so much"]
    rows = score_texts(texts)
    assert [r.sentiment for r in rows] == pytest.approx([float(s) for s in scorer.score(texts)], abs=1e-5)
    assert [(r.polarity, r.language, r.windows) for r in rows] == [("positive", "en", 1), ("positive", "en", 1),
                                                                   ("negative", "en", 1)]
    alone, = scorer.score_checked(["I loved it"])  # one text in a list: one row, the same one
    assert alone.sentiment == pytest.approx(rows[0].sentiment, abs=1e-5) and alone.polarity == "positive"


@pytest.mark.slow
def test_punctuation_and_case_do_not_matter(scorer: TextScorer):
    a, b = scorer.score(["It was GREAT, really great!", "it was great really great"])
    assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.slow
def test_text_without_words_is_refused(scorer: TextScorer):
    with pytest.raises(ValueError, match="no words"):
        scorer.score(["fine", "?!"])


def test_no_texts_load_nothing():
    assert score_texts([]) == []


@pytest.mark.slow
def test_text_command_writes_csv_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture):
    from pipeline.cli import main

    src = tmp_path / "lines.txt"
    src.write_text("what a wonderful day\n\n...\nI hate this so much\n", encoding="utf-8")
    assert main(["text", str(src)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["line"] for r in rows] == ["1", "4"]  # blank and word-less lines skipped
    assert rows[0]["polarity"] == "positive" and rows[1]["polarity"] == "negative"
    assert [r["language"] for r in rows] == ["en", "en"]


@pytest.mark.slow
def test_text_command_refuses_lines_in_another_language_unless_forced(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    from pipeline.cli import main

    src = tmp_path / "mixed.txt"
    src.write_text("what a wonderful day\nLe service était lent et la nourriture froide.\nno way\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert main(["text", str(src), "--out", str(out)]) == 1  # every line written, the refused one empty
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["line"], r["language"]) for r in rows] == [("1", "en"), ("2", "fr"), ("3", "en")]
    assert rows[1]["sentiment"] == rows[1]["polarity"] == "" and rows[0]["sentiment"] and rows[2]["sentiment"]
    assert f"{src}:2 looks like French ('fr': " in caplog.text and "--language en scores it anyway" in caplog.text
    caplog.clear()
    assert main(["text", str(src), "--out", str(out), "--language", "en"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[1]["language"] == "fr" and rows[1]["sentiment"] and rows[1]["polarity"]
    assert "1 line of 3 looks like another language; scored as English" in caplog.text


def test_text_command_unreadable_file_exits_1(tmp_path: Path):
    from pipeline.cli import main

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 tr\xe8s bien".encode("latin-1"))
    assert main(["text", str(bad)]) == 1
    assert main(["text", str(tmp_path / "missing.txt")]) == 1


@pytest.mark.slow
def test_one_window_scores_exactly_as_the_plain_path(scorer: TextScorer):
    """Short texts (the common case) are encoded and scored as before windows existed, to the last bit."""
    from model.batch import SampleInput

    texts = ["what a wonderful day", "I hate this so much", "um it was it was okay i guess"]
    encoder, miar = scorer.models.text_encoder, scorer.models.miar
    tokens = encoder.encode_batch([t.lower().split() for t in texts])
    plain = miar.predict([SampleInput(text=t.values, text_mask=np.ones(len(t.tokens), bool)) for t in tokens])
    np.testing.assert_array_equal(scorer.score(texts), plain)
    assert [r.windows for r in scorer.score_checked(texts)] == [1, 1, 1]


LONG_PREFIX = " ".join(
    f"In part {i} the narrator walks through the town, describes the houses, the river and the market, "
    "and lists what the shops sell on a weekday morning." for i in range(12))


@pytest.mark.slow
def test_a_long_texts_last_sentence_counts(scorer: TextScorer):
    """A text far beyond 128 tokens is read to its end: only its last sentence differs, and so does its score
    (cut at the encoder's limit, both would score the same)."""
    good = LONG_PREFIX + " In the end I loved it, it was wonderful, the best thing I have ever read."
    bad = LONG_PREFIX + " In the end I hated it, it was awful, the worst thing I have ever read."
    words = len(good.split())
    assert words > 250
    (g, b) = scorer.score_checked([good, bad])
    assert g.windows == b.windows > 3
    assert g.sentiment - b.sentiment > 0.1, (g, b)
    # what the text path scored before windows: the encoder cuts both at 128 tokens, so they score the same
    from model.batch import SampleInput

    cut = scorer.models.text_encoder.encode_batch([good.lower().split(), bad.lower().split()])
    assert all(len(t.tokens) == 128 for t in cut)
    before = scorer.models.miar.predict([SampleInput(text=t.values, text_mask=np.ones(128, bool)) for t in cut])
    assert before[0] == pytest.approx(before[1], abs=1e-5)


@pytest.mark.slow
def test_pooled_score_is_between_its_windows_and_a_long_text_mixes_with_short_ones(scorer: TextScorer):
    from pipeline.windows import plan_windows

    long = LONG_PREFIX + " I loved it."
    encoder = scorer.models.text_encoder
    words = long.lower().replace(",", "").replace(".", "").split()
    windows = plan_windows(encoder.token_counts(words), encoder.max_words_tokens)
    per_window = scorer.score([" ".join(words[s:e]) for s, e in windows])
    alone = scorer.score([long])[0]
    assert per_window.min() - 1e-6 <= alone <= per_window.max() + 1e-6
    mixed = scorer.score(["what a wonderful day", long, "I hate this so much"])
    assert mixed[1] == pytest.approx(alone, abs=1e-4)
    assert mixed[[0, 2]] == pytest.approx(scorer.score(["what a wonderful day", "I hate this so much"]), abs=1e-4)


@pytest.mark.slow
def test_score_checked_marks_and_refuses_other_languages_unless_forced(scorer: TextScorer):
    texts = ["I loved it", "Das Essen war kalt und der Kellner sehr unfreundlich.", "ok"]
    checked = scorer.score_checked(texts)
    assert [r.language for r in checked] == ["en", "de", "en"]
    assert checked[1].sentiment is None and checked[1].windows == 0 and "German" in checked[1].evidence
    assert checked[0].sentiment == pytest.approx(float(scorer.score(["I loved it"])[0]), abs=1e-5)
    forced = scorer.score_checked(texts, language="en")
    assert [r.language for r in forced] == ["en", "de", "en"] and all(r.sentiment is not None for r in forced)
    assert [r.sentiment for r in score_texts(texts, language="en")] == pytest.approx(
        [r.sentiment for r in forced], abs=1e-5)
    assert [r.polarity for r in checked] == [forced[0].polarity, "", forced[2].polarity]


@pytest.mark.slow
def test_no_word_has_more_tokens_than_its_bytes_plus_one(scorer: TextScorer):
    """What lets ``pipeline.windows.text_windows`` skip the tokenizer for texts that surely fit."""
    words = ("don't rock'n'roll ünïcödé 北京烤鸭 🙂🙂 x1y2z3 supercalifragilisticexpialidocious ﬁne ñandú "
             "a'b'c'd q̇ अच्छा").split()
    counts = scorer.models.text_encoder.token_counts(words)
    assert all(n <= len(w.encode("utf-8")) + 1 for w, n in zip(words, counts)), list(zip(words, counts))


@pytest.mark.slow
def test_windows_are_scored_a_bounded_number_at_a_time(scorer: TextScorer, monkeypatch: pytest.MonkeyPatch):
    import pipeline.text_scoring as text_scoring

    texts = ["what a wonderful day", LONG_PREFIX + " I loved it.", "I hate this", LONG_PREFIX + " I hated it."]
    whole = scorer.score(texts)
    monkeypatch.setattr(text_scoring, "WINDOWS_AT_ONCE", 3)
    assert scorer.score(texts) == pytest.approx(whole, abs=1e-4)
