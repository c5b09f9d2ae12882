"""Whisper's language codes, light (no faster-whisper import), for checking ``--language`` in the parser.

The list is faster-whisper's ``faster_whisper.tokenizer._LANGUAGE_CODES`` (1.x, the 100 codes
Whisper large-v3 knows); ``tests/test_cli.py`` checks it against the installed package.
"""

from __future__ import annotations

__all__ = ["WHISPER_LANGUAGE_CODES"]

#: Codes ``--language`` accepts (``AsrOptions.language``), in faster-whisper's order.
WHISPER_LANGUAGE_CODES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi",
    "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru",
    "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)
