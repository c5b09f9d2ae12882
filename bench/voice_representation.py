"""Which voice representation carries emotion to voices never heard: descriptors, Whisper states, or both.

    python bench/voice_representation.py [--features DIR] [--against OTHER_DIR]

Reads the CREMA-D features folder that ``python -m training.crema_d`` makes through the stage
sequence (per clip: each token's audio row = the 34 voice descriptors of its word, then Whisper
tiny.en's 384 encoder states of the same word). For each representation, a logistic regression
(standardised inputs, C chosen on the valid actors) on the clip's mean and standard deviation
over its words is trained on the training actors to tell happy from the four negative emotions
(anger, disgust, fear, sadness), and scored on the held-out actors (ids that are multiples of 5):
AUC and balanced accuracy at the 0.5 threshold. The same model is then scored on EmoDB's
held-out speakers (German, a different corpus: happiness against anger, disgust, fear, sadness),
from the whole clip's frames, to show how far each representation carries across corpora.

This is the cheap linear check behind the choice of features for the shipped weights; the
network's own figures are printed by ``python -m training.evaluate``.

``--against`` names a second CREMA-D features folder of the same clips whose states came from
another source (``extractors.voice_states.STATES_SOURCES``: the default folder holds the states kept
from Whisper's transcription pass, ``crema-d-features-layers-0`` those of a second pass) and
prints how far apart the two are per word: the relative difference of each word's state row.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from model.metrics import roc_auc, sign_accuracy
from storage.locations import cache_dir

log = logging.getLogger("bench.voice_representation")

HAPPY, NEGATIVE = "HAP", ("ANG", "DIS", "FEA", "SAD")
DESCRIPTORS = 34
REPRESENTATIONS: dict[str, slice] = {
    "34 voice descriptors": slice(0, DESCRIPTORS),
    "Whisper tiny.en states (384)": slice(DESCRIPTORS, None),
    "descriptors + states (418)": slice(0, None),
}


def clip_table(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2 x 418) mean and std of each clip's audio rows and (N,) +1 happy / -1 negative, other emotions left out."""
    rows, signs = [], []
    for path in sorted((folder / split).glob("*/*.npz")):
        emotion = path.stem.split("_")[2]
        if emotion != HAPPY and emotion not in NEGATIVE:
            continue
        with np.load(path) as z:
            audio, mask = z["audio"], z["audio_mask"].astype(bool)
        words = audio[mask] if mask.any() else audio
        rows.append(np.concatenate([words.mean(axis=0), words.std(axis=0)]))
        signs.append(1.0 if emotion == HAPPY else -1.0)
    return np.asarray(rows, np.float64), np.asarray(signs)


def _pick(table: np.ndarray, part: slice) -> np.ndarray:
    width = table.shape[1] // 2
    return np.concatenate([table[:, :width][:, part], table[:, width:][:, part]], axis=1)


def emodb_table() -> tuple[np.ndarray, np.ndarray]:
    """EmoDB held-out speakers: mean and std of the loud 0.3 s windows of each clip, with the states."""
    from training import sources

    held = sources.load_emodb(with_states=True)["test"]
    keep = np.abs(held.labels) >= 1.5
    rows = [np.concatenate([s.audio.mean(axis=0), s.audio.std(axis=0)]) for s in held.samples]
    return np.asarray(rows, np.float64)[keep], np.sign(held.labels[keep])


def state_differences(folder: Path, other: Path) -> np.ndarray:
    """Per word of every clip both folders hold with the same words: |a - b| / |b| of the word's states."""
    out = []
    for path in sorted(folder.glob("*/*/*.npz")):
        twin = other / path.relative_to(folder)
        if not twin.is_file():
            continue
        with np.load(path) as a, np.load(twin) as b:
            if a["audio"].shape != b["audio"].shape or not np.array_equal(a["audio_mask"], b["audio_mask"]):
                continue  # other words: not comparable
            mask = a["audio_mask"].astype(bool)
            x, y = a["audio"][mask][:, DESCRIPTORS:], b["audio"][mask][:, DESCRIPTORS:]
        words = np.unique(y, axis=0, return_index=True)[1]  # a word's row repeats on each of its tokens
        out.extend(np.linalg.norm(x[words] - y[words], axis=1) / np.maximum(np.linalg.norm(y[words], axis=1), 1e-9))
    return np.asarray(out)


def main(argv: list[str] | None = None) -> int:
    from extractors.voice_states import TRANSCRIPTION_PASS
    from training.crema_d import features_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, default=features_dir(cache_dir(), 0, TRANSCRIPTION_PASS),
                        help="CREMA-D features folder (default: states kept from transcription, at text depth 0: "
                             "miar-v6's recipe; the shipped weights' folder is crema-d-features-layers-0)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another folder of the same clips: print how far its word states are from these")
    parser.add_argument("--no-emodb", action="store_true", help="skip the EmoDB cross-corpus check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.against is not None:
        rel = state_differences(args.features, args.against)
        print(f"word states, {args.features.name} against {args.against.name}: {len(rel)} words; relative "
              f"difference median {np.median(rel):.3f}, quartiles {np.quantile(rel, 0.25):.3f} / "
              f"{np.quantile(rel, 0.75):.3f}; under 0.05 for {100 * np.mean(rel < 0.05):.1f} % of words")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, valid, test = (clip_table(args.features, s) for s in ("train", "valid", "test"))
    emodb = None if args.no_emodb else emodb_table()
    print(f"CREMA-D clips (happy vs negative): train {len(train[1])}, valid {len(valid[1])}, held-out actors "
          f"{len(test[1])}" + ("" if emodb is None else f"; EmoDB held-out speakers {len(emodb[1])}"))
    print(f"{'representation':32s} {'C':>6s} {'CREMA AUC':>10s} {'CREMA bal':>10s} "
          f"{'EmoDB AUC':>10s} {'EmoDB bal':>10s}")
    for name, part in REPRESENTATIONS.items():
        best = None
        for c in (0.001, 0.01, 0.1, 1.0):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
            model.fit(_pick(train[0], part), train[1])
            auc = roc_auc(model.decision_function(_pick(valid[0], part)), valid[1] > 0)
            if best is None or auc > best[0]:
                best = (auc, c, model)
        assert best is not None
        _, c, model = best
        score = model.decision_function(_pick(test[0], part))
        cells = [roc_auc(score, test[1] > 0), sign_accuracy(score, test[1], 0.5, balanced=True)]
        if emodb is not None:
            other = model.decision_function(_pick(emodb[0], part))
            cells += [roc_auc(other, emodb[1] > 0), sign_accuracy(other, emodb[1], 0.5, balanced=True)]
        print(f"{name:32s} {c:6g} " + " ".join(f"{100 * v:10.1f}" for v in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
