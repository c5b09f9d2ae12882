"""How often the speech-language decision refuses English or lets other languages through, on short clips.

    python bench/language_id.py [--crema N] [--seed S] [--no-synth]

The decision is the pipeline's (``pipeline.languages.speech_language``, taken in
``pipeline.features.featurize``): Whisper base identifies the language; English when it gives
English p >= 0.5, else when Whisper tiny.en's words average p >= 0.7; refused before decoding
only when another language is certain. Measured on:

- **false refusals**: CREMA-D clips (English, 1-5 s, 72 actors; ``--crema N`` draws N of the
  5,885 with seed ``--seed``; 0 takes all of them, about 0.7 s a clip on 2 cores);
- **false acceptances**: EmoDB's 535 German clips (2.0 s; ``--emodb N`` draws N) and short clips
  synthesised here with espeak-ng (when installed) from sentences of our own in German, Spanish,
  French, Italian, Portuguese and Dutch, two voices and two speeds each (1-3 s).

The thresholds were chosen on a separate development draw (250 CREMA-D clips, 120 EmoDB clips and
100 synthesised clips of other sentences); seed 1 drew those CREMA-D clips, so use another seed.
Prints the rates of the former rule ("another language first with p >= 0.5") beside the
current one.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from extractors.assets import resolve_ffmpeg
from extractors.media import SAMPLE_RATE_HZ, decode_audio
from extractors.transcript import AsrOptions, Transcriber
from pipeline.languages import speech_language
from storage.locations import cache_dir, shared_data_dir

log = logging.getLogger("bench.language_id")

#: Sentences of our own, per language (espeak-ng voice name), spoken for the false-acceptance set.
SENTENCES: dict[str, tuple[str, ...]] = {
    "de": ("Der Zug kommt heute später.", "Meine Schwester wohnt in Hamburg.", "Das Buch liegt auf dem Tisch.",
           "Morgen regnet es bestimmt.", "Wir essen um sieben Uhr."),
    "es": ("El tren llega tarde hoy.", "Mi hermana vive en Sevilla.", "El libro está en la mesa.",
           "Mañana va a llover.", "Cenamos a las siete."),
    "fr": ("Le train arrive en retard.", "Ma sœur habite à Lyon.", "Le livre est sur la table.",
           "Demain il va pleuvoir.", "Nous dînons à sept heures."),
    "it": ("Il treno arriva tardi oggi.", "Mia sorella abita a Roma.", "Il libro è sul tavolo.",
           "Domani pioverà di sicuro.", "Ceniamo alle sette."),
    "pt": ("O comboio chega atrasado hoje.", "A minha irmã mora em Lisboa.", "O livro está na mesa.",
           "Amanhã vai chover.", "Jantamos às sete."),
    "nl": ("De trein is vandaag te laat.", "Mijn zus woont in Utrecht.", "Het boek ligt op de tafel.",
           "Morgen gaat het regenen.", "We eten om zeven uur."),
}
#: (voice suffix, words per minute) of each synthesised rendering.
RENDERINGS: tuple[tuple[str, int], ...] = (("", 165), ("+f3", 140))


def decide(transcriber: Transcriber, audio: np.ndarray) -> tuple[bool, bool]:
    """(current decision: English?, former rule: English?) for one clip, as featurize takes them."""
    guess = transcriber.identify_language(audio)
    former = not (guess.language != "en" and guess.probability >= 0.5)
    first = speech_language(guess.language, guess.probability, guess.english_probability, None)
    if first.english or first.reason:
        return first.english, former
    words = transcriber.transcribe(audio).words
    return speech_language(guess.language, guess.probability, guess.english_probability,
                           [w.probability for w in words]).english, former


def synthesise(folder: Path) -> list[Path]:
    """The synthesised clips (empty when espeak-ng is not installed)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        log.warning("espeak-ng not installed: no synthesised clips (apt-get install espeak-ng)")
        return []
    paths = []
    for language, sentences in SENTENCES.items():
        for n, sentence in enumerate(sentences):
            for suffix, speed in RENDERINGS:
                path = folder / f"{language}_{n}_{speed}.wav"
                subprocess.run([espeak, "-v", language + suffix, "-s", str(speed), "-w", str(path), sentence],
                               check=True, capture_output=True)
                paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crema", type=int, default=600, help="CREMA-D clips drawn (0: all 5,885)")
    parser.add_argument("--emodb", type=int, default=0, help="EmoDB clips drawn (0: all 535)")
    parser.add_argument("--seed", type=int, default=2, help="seed of the draws (1 drew the development set)")
    parser.add_argument("--no-synth", action="store_true", help="skip the synthesised clips")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = shared_data_dir()
    rng = random.Random(args.seed)
    crema = sorted((data / "crema_d" / "audio").glob("*.opus"))
    crema = crema if args.crema <= 0 else rng.sample(crema, min(args.crema, len(crema)))
    emodb = sorted((data / "emodb" / "wav").glob("*.wav"))
    emodb = emodb if args.emodb <= 0 else rng.sample(emodb, min(args.emodb, len(emodb)))
    transcriber = Transcriber(AsrOptions(), cache_dir())
    ffmpeg = resolve_ffmpeg()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"CREMA-D (English)": crema, "EmoDB (German)": emodb}
        if not args.no_synth:
            sets["synthesised (de es fr it pt nl)"] = synthesise(Path(tmp))
        print(f"{'set':34s} {'clips':>6s} {'scored as English':>18s} {'former rule':>12s}")
        for name, paths in sets.items():
            if not paths:
                continue
            results = []
            for n, path in enumerate(paths, 1):
                results.append(decide(transcriber, decode_audio(path, ffmpeg, SAMPLE_RATE_HZ)))
                if n % 100 == 0:
                    log.info("%s: %d / %d", name, n, len(paths))
            now, former = (np.mean([r[i] for r in results]) for i in (0, 1))
            print(f"{name:34s} {len(paths):6d} {100 * now:17.1f}% {100 * former:11.1f}%")
    print("English sets: the share not scored is the false-refusal rate; other languages: the share scored is "
          "the false-acceptance rate.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
