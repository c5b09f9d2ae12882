"""CREMA-D (acted English emotional speech) as a training source, through the product's stage sequence.

    python -m training.crema_d [--config C] [--out FEATURES_DIR] [--workers N]   # resumable; under $MIAR_CACHE

Why this source: its 12 sentences are semantically neutral and each is spoken by every actor
in six emotions, so the sentiment of a clip lives in the voice alone. Trained on it, the
fusion learns that neutral words in an angry voice are negative, and the voice head learns
emotion from 72 English voices instead of 10 German ones.

How: the clips are laid out as an MMSA dataset (``label.csv`` + ``Raw/<actor>/<clip>.opus``
links) and extracted with ``pipeline.extract.extract_dataset``: each clip goes through
``featurize`` (decode, Whisper words, voice descriptors + Whisper encoder states per word,
text encoder, alignment), so training sees exactly what inference computes.

Label (``clip_valence``, on the MOSI scale; in the model card): the mean of two readings, the
emotion the actor played and the crowd's reading of the *voice alone* (``voice_vote``), each
mapped happy +2, neutral 0, anger / disgust / sadness -2, fear -1.5. The played emotion is
scaled by its stated intensity (low 0.75, medium or unspecified 1.0, high 1.25), the crowd's by
its rated intensity of the voice (``0.5 + voice_level / 100``: a level of 50 keeps the value).
Why both: in the sampled clips the crowd's voice-only vote names the played emotion only about
half the time (often "neutral" for a low-intensity take), so the vote keeps a voice from
carrying a label it does not show, while the played emotion keeps the label from collapsing
to neutral wherever a few raters hesitated. Clipped to [-3, 3].

Split by actor, chosen before any training and never by file: actors whose id is a multiple
of 5 are held out (``test``: never trained on, never selected on), ids ending in 3 select
(``valid``), the rest train. Clips are sampled per actor and emotion with a fixed seed
(``CLIPS_PER_EMOTION``), which keeps extraction within a session on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from extractors.voice_states import SECOND_PASS, STATES_SOURCES, TRANSCRIPTION_PASS
from storage import locations
from storage.files import write_text_atomic

__all__ = ["VOICE_VALENCE", "EMOTION_CODES", "CLIPS_PER_EMOTION", "CremaClip", "clip_valence", "actor_split",
           "read_crema_d", "build_dataset", "extract", "features_dir", "FIRST_TEXT_LAYERS"]

log = logging.getLogger(__name__)

#: The crowd's voice-only vote -> valence on the MOSI scale (before the intensity scale).
VOICE_VALENCE: dict[str, float] = {"H": 2.0, "N": 0.0, "A": -2.0, "D": -2.0, "S": -2.0, "F": -1.5}
#: labels.csv emotion name -> the vote letter of the same emotion.
EMOTION_CODES: dict[str, str] = {"happy": "H", "neutral": "N", "anger": "A", "disgust": "D", "sad": "S",
                                 "fear": "F"}
#: Stated intensity of the played emotion -> scale of its valence.
INTENSITY_SCALE: dict[str, float] = {"LO": 0.75, "MD": 1.0, "HI": 1.25, "XX": 1.0}
#: Clips drawn per actor and acted emotion, by split.
CLIPS_PER_EMOTION: dict[str, int] = {"train": 7, "valid": 4, "test": 5}
#: Seed of the per-actor sampling (fixed: the held-out clips never change).
SAMPLE_SEED = 0


@dataclass(frozen=True)
class CremaClip:
    """One CREMA-D clip: its file, actor, acted emotion, sentence and the label used."""

    file: str
    actor: str
    emotion: str
    intensity: str
    text: str
    voice_vote: str
    voice_level: float
    label: float
    split: str

    @property
    def clip_id(self) -> str:
        return Path(self.file).stem


def clip_valence(emotion: str, intensity: str, vote: str, level: float) -> float:
    """Valence of a clip: the mean of the played emotion's and the crowd's voice-only reading (module docstring)."""
    played = VOICE_VALENCE[EMOTION_CODES[emotion]] * INTENSITY_SCALE.get(_intensity_code(intensity), 1.0)
    heard = VOICE_VALENCE[vote] * (0.5 + max(0.0, min(100.0, level)) / 100.0)
    return float(max(-3.0, min(3.0, 0.5 * (played + heard))))


def _intensity_code(intensity: str) -> str:
    return {"low": "LO", "medium": "MD", "high": "HI"}.get(intensity.strip().lower(), "XX")


def actor_split(actor: str) -> str:
    """"test" for ids that are multiples of 5, "valid" for ids ending in 3, else "train"."""
    number = int(actor)
    return "test" if number % 5 == 0 else "valid" if number % 10 == 3 else "train"


def read_crema_d(shared: Path | None = None, sample: bool = True) -> list[CremaClip]:
    """The clips of ``shared/data/crema_d/labels.csv`` with labels and splits.

    Args:
        shared: The team's data folder (default ``storage.locations.shared_dir()``).
        sample: Keep ``CLIPS_PER_EMOTION`` clips per actor and emotion (seeded); False keeps all.
    """
    folder = (shared or locations.shared_dir()) / "data" / "crema_d"
    clips = []
    with open(folder / "labels.csv", newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            vote = row["voice_vote"].strip()
            if vote not in VOICE_VALENCE or row["emotion"] not in EMOTION_CODES:
                continue
            level = float(row["voice_level"] or 50.0)
            label = clip_valence(row["emotion"], row["intensity"], vote, level)
            clips.append(CremaClip(row["file"], row["actor"], row["emotion"], row["intensity"], row["text"], vote,
                                   level, label, actor_split(row["actor"])))
    clips.sort(key=lambda c: c.file)
    if not sample:
        return clips
    groups: dict[tuple[str, str], list[CremaClip]] = defaultdict(list)
    for clip in clips:
        groups[(clip.actor, clip.emotion)].append(clip)
    rng = random.Random(SAMPLE_SEED)
    kept = []
    for key in sorted(groups):
        group = groups[key]
        kept.extend(rng.sample(group, min(len(group), CLIPS_PER_EMOTION[group[0].split])))
    return sorted(kept, key=lambda c: c.file)


def build_dataset(clips: list[CremaClip], dataset: Path, shared: Path | None = None) -> Path:
    """Lay the clips out as an MMSA dataset (label.csv + Raw/<actor>/<clip>.opus links); returns ``dataset``."""
    audio = (shared or locations.shared_dir()) / "data" / "crema_d"
    mode = {"train": "train", "valid": "valid", "test": "test"}
    lines = ["video_id,clip_id,text,label,mode"]
    for clip in clips:
        link = dataset / "Raw" / clip.actor / Path(clip.file).name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            os.symlink((audio / clip.file).resolve(), link)
        text = clip.text.replace('"', "'")
        lines.append(f'{clip.actor},{clip.clip_id},"{text}",{clip.label:.4f},{mode[clip.split]}')
    write_text_atomic(dataset / "label.csv", "\n".join(lines) + "\n")
    return dataset


#: The depth the first CREMA-D features were made at (miar-v4's): their folder keeps the plain name.
FIRST_TEXT_LAYERS = 2
def features_dir(cache: Path | None = None, text_layers: int | None = FIRST_TEXT_LAYERS,
                 states: str = SECOND_PASS) -> Path:
    """Where the CREMA-D features whose text stops after ``text_layers`` encoder layers and whose
    voice states are of the kind ``states`` live (under the cache).

    One folder per depth, since weights that tune more of the encoder read shallower text rows
    (None is every layer), and per kind of states (``extractors.voice_states.STATES_SOURCES``:
    a second encoder pass over each clip, miar-v3 to v5, or kept from Whisper's own transcription
    pass, miar-v6's recipe), which are never mixed.
    """
    if states not in STATES_SOURCES:
        raise ValueError(f"CREMA-D voice states {states!r}: one of {STATES_SOURCES}")
    depth = "all" if text_layers is None else text_layers
    cache = cache or locations.cache_dir()
    if states == TRANSCRIPTION_PASS:
        return cache / f"crema-d-features-asr-states-layers-{depth}"
    root = cache / "crema-d-features"
    return root if text_layers == FIRST_TEXT_LAYERS else root.with_name(f"{root.name}-layers-{depth}")


def extract(out: Path | None = None, shared: Path | None = None, cache: Path | None = None,
            config: Path | None = None, workers: int = 1) -> Path:
    """Extract the sampled CREMA-D clips into a features folder (resumable); returns the folder.

    The text features stop where the recipe's fine-tuned layers start (``text.layers`` of
    ``config``, default the shipped recipe), as inference feeds the weights. When the folder of
    another depth exists already, only the text is encoded again from its stored words
    (``pipeline.extract.reencode_text``: seconds, not an hour of Whisper and voice).
    """
    from pipeline.config import PipelineConfig
    from pipeline.extract import ExtractOptions, extract_dataset, reencode_text
    from training.loop import TrainOptions

    options = TrainOptions.from_json(config or locations.DEFAULT_TRAINING_CONFIG)
    states = options.crema_d_states
    out = out or features_dir(cache, options.text.layers, states)
    others = [features_dir(cache, n, states) for n in (FIRST_TEXT_LAYERS, 0, None) if n != options.text.layers]
    source = next((f for f in others if (f / "manifest.json").is_file()), None)
    if source is not None and not (out / "manifest.json").is_file():
        summary = reencode_text(source, out, options.text)
        log.info("CREMA-D: text of %s encoded again at depth %s: %d done, %d already there, %d failed -> %s",
                 source, options.text.layers, summary.extracted, summary.skipped, len(summary.failures), out)
        return out
    dataset = build_dataset(read_crema_d(shared), (cache or locations.cache_dir()) / "crema-d-dataset", shared)
    pipeline_config = PipelineConfig()
    # the states the recipe reads: kept from Whisper's transcription pass, or from a second pass
    kept = replace(pipeline_config.voice_states, kept=states == TRANSCRIPTION_PASS)
    pipeline_config = replace(pipeline_config, text=options.text, voice_states=kept)
    summary = extract_dataset(dataset, out, pipeline_config, ExtractOptions(workers=workers, language="en"))
    log.info("CREMA-D: %d extracted, %d already done, %d failed -> %s", summary.extracted, summary.skipped,
             len(summary.failures), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.crema_d", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="features folder (default under $MIAR_CACHE, named by the config's text depth)")
    parser.add_argument("--config", type=Path, default=None,
                        help="training config whose text options the features follow (default the shipped one)")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes, each loading the models once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    extract(args.out, args.shared, config=args.config, workers=max(1, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
