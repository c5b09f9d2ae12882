"""Media-based training sources: EmoDB and speech_valence audio, face photos.

Each builder turns one source of the team's data (``shared_dir() / "data"``) into labelled
samples the model eats (``SourceSamples``: ``SampleInput`` per item, a label on the MOSI
scale [-3, 3], a group id for splitting). Audio and vision features come from the
project's own extractors (``extractors.voice.extract_voice``, ``extractors.face.FaceExtractor``)
so that training sees exactly what the pipeline computes; they are cached on disk under
``storage.locations.cache_dir() / "source-features"`` (written atomically), keyed by a hash
of the extractor's source file, its options and the input file list, so an edited
extractor never reuses stale features.

Label mappings (also in the model card):

- EmoDB (acted German speech): happiness +2.0; anger, disgust, sadness -2.0; fear ("anxiety" in
  the labels file, German "Angst") -1.5;
  boredom -0.5; neutral 0.0. Split by speaker: 03 (male) and 08 (female) are held out.
- speech_valence: valence in [-1, 1] x 3. Files whose number is a multiple of 5 are held out.
- Taiwan faces: soft target = rater-proportion-weighted mean of happy +2.5, sad/angry/disgusted
  -2.5, fearful -2.0, surprised 0 (posed fear is mostly read as something else; the raters'
  reading is the better target). Split by performer: ids that are multiples of 5 are held out.
- muxspace faces: happiness +2.5; anger, disgust, sadness, contempt -2.5; fear -2.0; neutral,
  surprise 0. Split by the person named in the file (a stable hash, ~20% held out).

Text is absent (masked) for audio and vision sources: EmoDB is German and the others have no
transcript, so an English text encoder would only add noise.

Audio items are sequences of ~0.3 s window means of the 100 Hz voice frames, because the
pipeline feeds the model one row per word, the mean of the frames inside the word.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors import voice_states as states_mod
from model.batch import SampleInput
from storage import locations
from storage.files import write_via_atomic

__all__ = [
    "EMODB_VALENCE", "EMODB_HELD_OUT_SPEAKERS", "FACE_VALENCE", "TAIWAN_VALENCE", "WORD_FRAMES", "FACE_PAD",
    "MUXSPACE_PER_MAJOR_CLASS", "SourceSamples", "emodb_speaker", "taiwan_valence", "load_emodb",
    "load_speech_valence", "load_taiwan", "load_muxspace", "voice_windows",
]

log = logging.getLogger(__name__)

#: EmoDB emotion -> valence on the MOSI scale.
EMODB_VALENCE: dict[str, float] = {
    "happiness": 2.0, "anger": -2.0, "disgust": -2.0, "sadness": -2.0, "fear": -1.5, "anxiety": -1.5, "boredom": -0.5,
    "neutral": 0.0,
}
#: EmoDB speakers never trained on (one male, one female).
EMODB_HELD_OUT_SPEAKERS: frozenset[str] = frozenset({"03", "08"})
#: Face-photo emotion (folder name) -> valence on the MOSI scale.
FACE_VALENCE: dict[str, float] = {
    "happiness": 2.5, "anger": -2.5, "disgust": -2.5, "sadness": -2.5, "contempt": -2.5, "fear": -2.0,
    "neutral": 0.0, "surprise": 0.0,
}
#: Taiwan rater categories (``rater_prop_*``) -> valence.
TAIWAN_VALENCE: dict[str, float] = {
    "happy": 2.5, "sad": -2.5, "angry": -2.5, "disgusted": -2.5, "fearful": -2.0, "surprised": 0.0,
}
#: Voice-frame window (frames of 10 ms) averaged into one audio row: about one word.
WORD_FRAMES = 30
#: Padding added around each side of a face photo before detection, as a share of its side.
FACE_PAD = 0.3
#: muxspace happiness/neutral photos used (of 1,500 each; the other classes are all used).
MUXSPACE_PER_MAJOR_CLASS = 500


@dataclass(frozen=True)
class SourceSamples:
    """Labelled samples of one source and split.

    Attributes:
        name: Source name ("emodb", "speech_valence", "taiwan", "muxspace").
        split: "train" or "test" (held out).
        ids: One id per sample (file path relative to the source folder).
        samples: Model inputs; only the source's modality is present.
        labels: (N,) float32 valence on the MOSI scale [-3, 3].
        groups: Speaker / performer / person of each sample (the split unit).
    """

    name: str
    split: str
    ids: tuple[str, ...]
    samples: tuple[SampleInput, ...]
    labels: np.ndarray
    groups: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.samples)


def _version(*objects: object) -> str:
    """Hash of the extractor code and settings that made cached features."""
    digest = hashlib.sha256()
    for obj in objects:
        digest.update(inspect.getsource(obj).encode() if inspect.ismodule(obj) else repr(obj).encode())
    return digest.hexdigest()[:12]


def _cached(
    name: str, key: str, make: Callable[[], dict[str, np.ndarray]], cache_dir: Path | None
) -> dict[str, np.ndarray]:
    folder = (cache_dir or locations.cache_dir()) / "source-features"
    path = folder / f"{name}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    log.info("%s: extracting features (once; cached in %s)", name, folder)
    arrays = make()
    write_via_atomic(path, lambda tmp: np.savez(tmp, **arrays))
    return arrays


def _voice_frames(paths: Sequence[Path], name: str, cache_dir: Path | None,
                 with_states: bool = False) -> list[np.ndarray]:
    """Voice frames of each audio file, from the cache or ``extract_voice``: (T, 34) descriptors,
    or (T, 418) with Whisper's encoder states beside them (``extractors.voice_states.combine``)."""
    from extractors.assets import resolve_ffmpeg
    from extractors.media import SAMPLE_RATE_HZ, decode_audio

    options = voice_mod.VoiceOptions()
    states_options = states_mod.VoiceStatesOptions() if with_states else None
    key = _version(voice_mod, options, [p.name for p in paths]) if not with_states else \
        _version(voice_mod, states_mod, options, states_options, [p.name for p in paths])

    def make() -> dict[str, np.ndarray]:
        ffmpeg = resolve_ffmpeg()
        states = states_mod.VoiceStates.load(states_options, locations.cache_dir()) if states_options else None
        tracks = []
        for n, path in enumerate(paths):
            audio = decode_audio(path, ffmpeg, SAMPLE_RATE_HZ)
            track = voice_mod.extract_voice(audio, SAMPLE_RATE_HZ, options)
            if states is not None:
                track = states_mod.combine(track, states.extract(audio))
            tracks.append(track.values)
            if (n + 1) % 100 == 0:
                log.info("%s: %d / %d files", name, n + 1, len(paths))
        offsets = np.cumsum([0] + [len(t) for t in tracks]).astype(np.int64)
        return {"values": np.concatenate(tracks).astype(np.float32), "offsets": offsets}

    arrays = _cached(name + ("-states" if with_states else ""), key, make, cache_dir)
    v, o = arrays["values"], arrays["offsets"]
    return [v[a:b] for a, b in zip(o[:-1], o[1:])]


def voice_windows(frames: np.ndarray, window: int = WORD_FRAMES, quiet_db: float = 30.0) -> np.ndarray:
    """Means of consecutive ``window``-frame windows, silent windows dropped.

    The pipeline gives the model one voice row per word (the mean of the frames inside it);
    windows of ~0.3 s are the nearest thing in unsegmented speech. Windows whose mean
    ``rms_db`` is more than ``quiet_db`` below the loudest window are padding or pauses,
    where no word would be, and are dropped (the loudest window always stays).

    Returns:
        (W, 34) float32, W >= 1 for any input with at least one frame.
    """
    frames = np.asarray(frames, np.float32)
    n = max(1, len(frames) // window)
    rows = np.stack([np.nanmean(frames[i * window:(i + 1) * window], axis=0) for i in range(n)])
    loud = rows[:, voice_mod.COLUMNS.index("rms_db")]
    keep = loud >= np.nanmax(loud) - quiet_db if np.isfinite(loud).any() else np.ones(n, bool)
    return rows[keep]


def emodb_speaker(filename: str) -> str:
    """Speaker id of an EmoDB file: its first two characters ("03a01Fa.wav" -> "03")."""
    return filename[:2]


def _audio_source(
    name: str, files: list[tuple[str, Path, float, str, bool]], cache_dir: Path | None, with_states: bool = False,
) -> dict[str, SourceSamples]:
    frames = _voice_frames([p for _, p, _, _, _ in files], name, cache_dir, with_states)
    out = {}
    for split, held in (("train", False), ("test", True)):
        chosen = [(f, fr) for f, fr in zip(files, frames) if f[4] == held]
        samples = []
        for _, fr in chosen:
            rows = voice_windows(fr)
            samples.append(SampleInput(text=np.zeros((0, 1), np.float32), text_mask=np.zeros(0, bool),
                                       audio=rows, audio_mask=np.ones(len(rows), bool)))
        out[split] = SourceSamples(name, split, tuple(f[0] for f, _ in chosen), tuple(samples),
                                   np.array([f[2] for f, _ in chosen], np.float32), tuple(f[3] for f, _ in chosen))
    return out


def load_emodb(shared: Path | None = None, cache_dir: Path | None = None,
               with_states: bool = False) -> dict[str, SourceSamples]:
    """EmoDB as audio-only samples, split by speaker ("train", "test" = ``EMODB_HELD_OUT_SPEAKERS``);
    ``with_states`` adds Whisper's encoder states to each row."""
    folder = (shared or locations.shared_dir()) / "data" / "emodb"
    files = []
    with open(folder / "audio_labels.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            name = row["Filename"]
            speaker = emodb_speaker(name)
            files.append((name, folder / "wav" / name, EMODB_VALENCE[row["Emotion"].strip().lower()], speaker,
                          speaker in EMODB_HELD_OUT_SPEAKERS))
    files.sort()
    return _audio_source("emodb", files, cache_dir, with_states)


def load_speech_valence(shared: Path | None = None, cache_dir: Path | None = None,
                        with_states: bool = False) -> dict[str, SourceSamples]:
    """speech_valence as audio-only samples, valence x 3; files numbered 0, 5, 10, ... held out;
    ``with_states`` adds Whisper's encoder states to each row."""
    folder = (shared or locations.shared_dir()) / "data" / "speech_valence"
    files = []
    with open(folder / "valence.csv", newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[0].endswith(".wav"):
                number = int(Path(row[0]).stem)
                files.append((row[0], folder / row[0], 3.0 * float(row[1]), row[0], number % 5 == 0))
    files.sort()
    return _audio_source("speech_valence", files, cache_dir, with_states)


def _padded_rgb(path: Path) -> np.ndarray:
    """The photo as RGB with a border of its median edge colour (detectors need context around tight crops)."""
    from PIL import Image

    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"))
    h, w = image.shape[:2]
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    fill = np.median(edge, axis=0).astype(np.uint8)
    ph, pw = int(FACE_PAD * h), int(FACE_PAD * w)
    out = np.empty((h + 2 * ph, w + 2 * pw, 3), np.uint8)
    out[:] = fill
    out[ph:ph + h, pw:pw + w] = image
    return out


def _face_rows(paths: Sequence[Path], name: str, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """One face row (56) per photo and whether a face was found, from the cache or ``FaceExtractor``."""
    from extractors.records import Frame

    options = face_mod.FaceOptions()
    key = _version(face_mod, options, FACE_PAD, [str(p.relative_to(p.parents[1])) for p in paths])

    def make() -> dict[str, np.ndarray]:
        rows, present = [], []
        with face_mod.FaceExtractor(options) as extractor:
            for n, path in enumerate(paths):
                track = extractor.extract([Frame(0.0, _padded_rgb(path))], rate_hz=0.0)
                rows.append(track.values[0])
                present.append(bool(track.present[0]))
                if (n + 1) % 200 == 0:
                    log.info("%s: %d / %d photos", name, n + 1, len(paths))
        return {"values": np.stack(rows).astype(np.float32), "present": np.array(present, bool)}

    arrays = _cached(name, key, make, cache_dir)
    return arrays["values"], arrays["present"]


def _vision_source(
    name: str, items: list[tuple[str, Path, float, str, bool]], cache_dir: Path | None
) -> dict[str, SourceSamples]:
    values, present = _face_rows([p for _, p, _, _, _ in items], name, cache_dir)
    log.info("%s: face found in %d of %d photos (the others are left out)", name, int(present.sum()), len(items))
    out = {}
    for split, held in (("train", False), ("test", True)):
        idx = [i for i, it in enumerate(items) if it[4] == held and present[i]]
        samples = tuple(SampleInput(text=np.zeros((0, 1), np.float32), text_mask=np.zeros(0, bool),
                                    vision=values[i:i + 1], vision_mask=np.ones(1, bool)) for i in idx)
        out[split] = SourceSamples(name, split, tuple(items[i][0] for i in idx), samples,
                                   np.array([items[i][2] for i in idx], np.float32), tuple(items[i][3] for i in idx))
    return out


def taiwan_valence(props: dict[str, float]) -> float:
    """Soft valence of a Taiwan photo: rater-proportion-weighted mean of ``TAIWAN_VALENCE``."""
    total = sum(props.values())
    if total <= 0:
        return 0.0
    return float(sum(p * TAIWAN_VALENCE[k] for k, p in props.items()) / total)


def load_taiwan(shared: Path | None = None, cache_dir: Path | None = None) -> dict[str, SourceSamples]:
    """Taiwan posed faces as one-frame vision samples with soft valence, split by performer."""
    folder = (shared or locations.shared_dir()) / "data" / "faces" / "taiwan"
    items = []
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            props = {k: float(row[f"rater_prop_{k}"] or 0.0) for k in TAIWAN_VALENCE}
            performer = row["performer_id"]
            items.append((row["path"], folder / row["path"], taiwan_valence(props), performer, int(performer) % 5 == 0))
    items.sort()
    return _vision_source("taiwan", items, cache_dir)


def load_muxspace(shared: Path | None = None, cache_dir: Path | None = None) -> dict[str, SourceSamples]:
    """muxspace face photos as one-frame vision samples, split by the person named in the file.

    Happiness and neutral are capped at ``MUXSPACE_PER_MAJOR_CLASS`` photos each (first by
    file name) to keep extraction short and the classes less lopsided.
    """
    folder = (shared or locations.shared_dir()) / "data" / "faces" / "muxspace"
    items, per_class = [], {}
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["path"])
    for row in rows:
        emotion = row["emotion"].strip().lower()
        if emotion not in FACE_VALENCE:
            continue
        per_class[emotion] = per_class.get(emotion, 0) + 1
        if emotion in ("happiness", "neutral") and per_class[emotion] > MUXSPACE_PER_MAJOR_CLASS:
            continue
        person = Path(row["path"]).stem.rsplit("_", 1)[0]
        held = zlib.crc32(person.encode()) % 5 == 0
        items.append((row["path"], folder / row["path"], FACE_VALENCE[emotion], person, held))
    return _vision_source("muxspace", items, cache_dir)
