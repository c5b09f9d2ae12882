"""Languages: Whisper's codes for ``--language``, and a light check that a text reads as English.

Light on purpose (standard library only): the CLI imports this module to build its parser.

``WHISPER_LANGUAGE_CODES`` is faster-whisper's ``faster_whisper.tokenizer._LANGUAGE_CODES`` (1.x,
the 100 codes Whisper large-v3 knows); ``tests/test_cli.py`` checks it against the installed package.

``check_text_language`` is what ``python -m pipeline text`` and ``score_texts`` run on every text
before scoring it: the sentiment model reads English only, and another language gets a confident,
meaningless score. No model: the video path has Whisper to identify spoken language, the text
path has only the words, so the check counts signs in them (``check_text_language`` says which).
It errs towards English: a text is called another language only on clear evidence, so short
answers ("ok", "no way"), numbers, names and English with a foreign word in it pass as English.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["WHISPER_LANGUAGE_CODES", "ENGLISH", "TextLanguage", "check_text_language", "SpeechLanguage",
           "speech_language", "SPEECH_ENGLISH_MIN_PROBABILITY", "SPEECH_ENGLISH_MIN_WORD_PROBABILITY",
           "SPEECH_OTHER_CERTAIN_PROBABILITY"]

#: Codes ``--language`` accepts (``AsrOptions.language``), in faster-whisper's order.
WHISPER_LANGUAGE_CODES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi",
    "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru",
    "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)


#: What ``check_text_language`` calls a text that reads as English (or shows no sign of another language).
ENGLISH = "en"
#: What it calls a text in another language it cannot name (a script or alphabet without a guess below).
OTHER = "non-en"

#: Non-Latin letters outnumbering Latin ones make a text not English; the script names the language.
#: The first word of a letter's Unicode name -> language code (Cyrillic and Arabic are written in many
#: languages: the code is the likeliest, a guess).
_SCRIPT_LANGUAGES: dict[str, str] = {
    "CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "ARABIC": "ar",
    "HEBREW": "he", "GREEK": "el", "DEVANAGARI": "hi", "THAI": "th", "BENGALI": "bn", "TAMIL": "ta",
    "GEORGIAN": "ka", "ARMENIAN": "hy",
}
#: Kana anywhere makes Han characters Japanese rather than Chinese.
_KANA = frozenset({"HIRAGANA", "KATAKANA"})

#: English words that carry grammar, not topic: articles, pronouns, auxiliaries, prepositions,
#: conjunctions, common adverbs, contractions, and what speech transcripts add (fillers, short answers).
_ENGLISH_WORDS = frozenset("""
a about above after again against ago all almost also although always am among an and another any anybody
anyone anything are aren't around as at away back be because been before being below between both but by
can can't cannot could couldn't did didn't do does doesn't doing don't done down during each either else
enough even ever every everybody everyone everything few for from further get gets getting go goes going
gone got gotta gonna had hadn't has hasn't have haven't having he he'd he'll he's her here hers herself him
himself his how however i i'd i'll i'm i've if in into is isn't it it'd it'll it's its itself just kind
kinda least less let's like lot lots many may maybe me might mine more most much must mustn't my myself
neither never no nobody none nor not nothing now of off often oh ok okay on once one only or other others
our ours ourselves out over own per perhaps please pretty quite rather really right same shall she she'd
she'll she's should shouldn't since so some somebody someone something sometimes somewhat soon still such
sure than that that's the their theirs them themselves then there there's these they they'd they'll they're
they've thing things this those though through thus to too toward towards uh uhm um umm under until up upon
us very wanna was wasn't we we'd we'll we're we've well were weren't what what's whatever when where
whether which while who who's whom whose why will with within without won't would wouldn't ya yeah yep yes
yet you you'd you'll you're you've your yours yourself yourselves hmm mhm hm erm eh ah oops wow nope yup
""".split())

#: Grammar words of the other languages people most often feed the text path by mistake, less any
#: that are also English words ("in", "a", "me", "no", "so", ...: those count as English).
_OTHER_WORDS: dict[str, frozenset[str]] = {
    language: frozenset(words.split()) - _ENGLISH_WORDS for language, words in {
        "de": """der die das den dem des ein eine einen einem einer eines und ist sind nicht sich mit auf für
            von zu zum zur ich du er sie es wir ihr sehr auch aber oder wie noch nur schon war waren wird
            werden kann können doch mir mich dich uns kein keine keinen wenn dass weil hier jetzt immer etwas
            nichts ganz wirklich bei nach aus über im vom beim diese dieser dieses mein meine dein sein seine
            unser nein gar einfach gibt habe hast haben hatte wurde mehr sowie ob dann denn wieder heute viel
            nie zu""",
        "es": """el la los las un una unos unas y que de del en es por para con se su sus lo al pero muy más
            como está esta este esto eso ese esa son fue era ser estar hay tiene tengo yo tú él ella nosotros
            ellos mi te nos ya también porque cuando donde sí bien todo nada qué cómo pues entonces aquí ahora
            estoy estaba fueron muy mucho mucha siempre nunca algo""",
        "fr": """le la les un une des du de et est sont ce cette ces c'est il elle ils elles nous vous je j'ai
            tu on ne pas plus très mais ou où avec pour dans sur par qui que qu'il au aux été était être avoir
            ai mon ma mes sa ses leur y en bien tout tous rien aussi alors donc parce comme si oui non moi toi
            lui ça cela ici trop vraiment n'est d'un d'une peu beaucoup toujours jamais bon bonne""",
        "it": """il lo la gli le un uno una e è di del della dei delle che non per con su ma molto sono era ho
            hai ha questo questa quello quella mi ti ci si anche come più perché già cosa tutto bene io lui lei
            noi voi loro nel nella al alla sempre ancora molto niente""",
        "pt": """o os um uma e é de do da dos das que não em na para com por mas muito muita eu você ele ela
            nós isso isto este esta esse essa foi era são está tem meu minha seu sua também mais bem já quando
            porque sim então aqui agora nada sempre nunca""",
        "nl": """de het een en van ik je jij hij zij wij niet dat die er maar met voor op te zijn ook nog wel
            heel erg dit deze naar bij uit om als dan geen heb hebt heeft wordt mijn onze omdat echt nu daar
            wat hier wij jullie""",
    }.items()
}
#: Letters English does not use, by the language they suggest most (a hint when grammar words are few).
_LETTER_LANGUAGES: dict[str, str] = {
    **dict.fromkeys("äöüß", "de"), **dict.fromkeys("ñ¿¡áíóú", "es"), **dict.fromkeys("éàçèêëîïôûœâÿ", "fr"),
    **dict.fromkeys("ãõ", "pt"), **dict.fromkeys("ìòù", "it"),
}
#: Signs of another language needed before a text is called not English: one foreign-looking word
#: ("Le Mans", "café", "la la land") is a name or a loan far more often than a language.
MIN_FOREIGN_SIGNS = 2
#: ... and they must outnumber the English grammar words by this factor (an English sentence quoting
#: "c'est la vie" keeps more English grammar words than foreign ones).
FOREIGN_OVER_ENGLISH = 1.5


@dataclass(frozen=True)
class TextLanguage:
    """What ``check_text_language`` found.

    Attributes:
        language: "en" when the text reads as English or shows no sign of another language;
            otherwise the language it looks like (a Whisper code: de, es, fr, it, pt, nl by their
            grammar words and letters; zh, ja, ko, ru, ar, he, el, hi, ... by their script), or
            "non-en" when it cannot be named.
        evidence: Why, in words ("5 of 9 words are German grammar words"); "" for English.
    """

    language: str
    evidence: str = ""

    @property
    def is_english(self) -> bool:
        return self.language == ENGLISH


#: Language names for messages.
LANGUAGE_NAMES: dict[str, str] = {
    "de": "German", "es": "Spanish", "fr": "French", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "ar": "Arabic", "he": "Hebrew",
    "el": "Greek", "hi": "Hindi", "th": "Thai", "bn": "Bengali", "ta": "Tamil", "ka": "Georgian",
    "hy": "Armenian", OTHER: "another language",
}


def check_text_language(text: str) -> TextLanguage:
    """Does ``text`` read as English? A light check (no model, microseconds a sentence).

    1. Script: when letters of another script (Han, kana, Hangul, Cyrillic, Arabic, ...) outnumber
       Latin ones, the text is that script's language.
    2. Latin script: the distinct words that are grammar words of German, Spanish, French, Italian,
       Portuguese or Dutch (of the language with most), plus the distinct words with letters English
       does not use (ä, ñ, ç, ...), are signs of that language. The text is called that language when
       there are at least ``MIN_FOREIGN_SIGNS`` of them and they outnumber the distinct English grammar
       words (fillers and short answers included) ``FOREIGN_OVER_ENGLISH`` times.

    Anything else is English, including texts without letters (numbers) and short answers. A
    one-word foreign line ("Danke") therefore passes as English: the check prefers missing a short
    foreign line to refusing English.
    """
    text = unicodedata.normalize("NFKC", text)
    scripts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            try:
                script = unicodedata.name(ch).split(" ", 1)[0]
            except ValueError:  # an unnamed letter
                script = OTHER
            scripts[script] = scripts.get(script, 0) + 1
    letters = sum(scripts.values())
    latin = scripts.get("LATIN", 0)
    if letters and latin * 2 < letters:
        script = max((s for s in scripts if s != "LATIN"), key=lambda s: scripts[s])
        language = _SCRIPT_LANGUAGES.get(script, OTHER)
        if language == "zh" and _KANA & scripts.keys():
            language = "ja"
        name = "an unnamed" if script == OTHER else script if script == "CJK" else script.title()
        return TextLanguage(language, f"{letters - latin} of {letters} letters are in {name} script")
    words = _words(text)
    english = {w for w in words if w in _ENGLISH_WORDS}
    marked = {w for w in words if any(ch in _LETTER_LANGUAGES for ch in w)}
    hints = {language: 0 for language in _OTHER_WORDS}  # letters English does not use, by language
    for ch in "".join(marked):
        if ch in _LETTER_LANGUAGES:
            hints[_LETTER_LANGUAGES[ch]] += 1
    grammar_words = {language: {w for w in words if w in grammar} for language, grammar in _OTHER_WORDS.items()}
    best = max(_OTHER_WORDS, key=lambda language: (len(grammar_words[language]), hints[language]))
    found = len(grammar_words[best] | marked)
    if found >= MIN_FOREIGN_SIGNS and found > FOREIGN_OVER_ENGLISH * len(english):
        grammar, lettered = len(grammar_words[best]), len(marked - grammar_words[best])
        parts = [f"{grammar} {LANGUAGE_NAMES[best]} grammar word{'' if grammar == 1 else 's'}"] if grammar else []
        if lettered:
            parts.append(f"{lettered} other word{'' if lettered == 1 else 's'} with letters English does not use")
        return TextLanguage(best, f"{' and '.join(parts)} against {len(english)} English grammar "
                                  f"word{'' if len(english) == 1 else 's'}")
    return TextLanguage(ENGLISH)


def _words(text: str) -> list[str]:
    """Lower-case words of ``text``: letters and inner apostrophes (as ``extractors.text.normalise_text``)."""
    cleaned = "".join(ch if ch.isalpha() or ch == "'" else " " for ch in text.replace("\u2019", "'").lower())
    return [w.strip("'") for w in cleaned.split() if w.strip("'")]


#: Speech is English when Whisper's language identification gives English at least this
#: probability, even when another language comes first (short English clips often come out
#: 'nl', 'cy' or 'fr' first with English close behind).
SPEECH_ENGLISH_MIN_PROBABILITY = 0.5
#: Below that, it is still English when the English recogniser heard it fluently: the mean
#: probability of its words at least this. Whisper tiny.en reads real English at 0.92 (median;
#: 5th percentile 0.64, CREMA-D) and other languages as English-sounding guesses at 0.34-0.37
#: (EmoDB German, synthesised German, Spanish, French, Italian, Dutch; 95th percentile <= 0.62).
SPEECH_ENGLISH_MIN_WORD_PROBABILITY = 0.7
#: Speech identified as another language with this probability while English gets almost none
#: (< 5 %) is refused before any decoding: nothing an English recogniser hears could rescue it.
SPEECH_OTHER_CERTAIN_PROBABILITY = 0.9


@dataclass(frozen=True)
class SpeechLanguage:
    """The decision on one file's speech (``speech_language``).

    Attributes:
        english: Score it (the sentiment model reads English only).
        reason: Why not, for the refusal message ("" when ``english``).
    """

    english: bool
    reason: str = ""


def speech_language(language: str, probability: float, english_probability: float,
                    word_probabilities: list[float] | None) -> SpeechLanguage:
    """Is this speech English? Whisper's language identification, then what the English recogniser heard.

    Thresholds chosen on a development set of short clips (250 CREMA-D English clips, 120 EmoDB
    German clips, 100 synthesised clips in five other languages; ``bench/language_id.py`` measures
    them on other clips): identification alone on 1-3 s clips either refuses English (a rule on
    English's probability) or lets most synthesised foreign speech through (the former rule, "another
    language first with p >= 0.5"); the transcript's confidence separates the two where
    identification hesitates.

    Args:
        language, probability: Whisper's most probable language and its probability.
        english_probability: Its probability of English.
        word_probabilities: Probabilities of the words the English recogniser heard (None: not
            decoded yet; an empty list: it heard none).

    Returns:
        English, or not with the reason; with ``word_probabilities`` None, "not English" is
        returned only when certain (``SPEECH_OTHER_CERTAIN_PROBABILITY``), and English only when
        identification says so; otherwise ``english`` is False with reason "" (decode, then ask again).
    """
    if english_probability >= SPEECH_ENGLISH_MIN_PROBABILITY:
        return SpeechLanguage(True)
    said = f"speech identified as {language!r} (p={probability:.2f}; English p={english_probability:.2f})"
    if word_probabilities is None:
        if probability >= SPEECH_OTHER_CERTAIN_PROBABILITY and english_probability < 0.05:
            return SpeechLanguage(False, said)
        return SpeechLanguage(False)
    fluency = sum(word_probabilities) / len(word_probabilities) if word_probabilities else 0.0
    if fluency >= SPEECH_ENGLISH_MIN_WORD_PROBABILITY:
        return SpeechLanguage(True)
    heard = (f"the English recogniser's words average p={fluency:.2f}" if word_probabilities
             else "the English recogniser heard no word")
    return SpeechLanguage(False, f"{said}, and {heard}")
