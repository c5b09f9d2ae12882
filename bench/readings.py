"""Per-modality readings: the fused network fed one modality alone vs the auxiliary heads.

    python bench/readings.py [--weights weights/miar-v4]

What the outputs' ``text_score`` / ``voice_score`` / ``face_score`` should be (model/DESIGN.md,
"Per-modality readings") is decided by these numbers, on held-out data only:

- MOSI dev transcripts (text), EmoDB held-out speakers (voice), Taiwan held-out performers
  (face): ``LoadedMiar.predict_readings`` (fused output, other modalities masked) against
  ``LoadedMiar.head_readings`` (the per-modality head of that modality);
- one pass with all three present (MOSI dev sentences with a held-out EmoDB voice and Taiwan
  face attached, cycled): does each head follow its own modality's label or the text's?

Needs the team data (``$MIAR_SHARED``); the EmoDB and Taiwan features come from the
training sources' cache (built through the extractors on first use, a few minutes).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from model.metrics import mae, mosi_metrics, pearson, sign_accuracy
from model.schema import MODALITIES
from pipeline.config import PipelineConfig
from pipeline.models import Models
from storage.locations import shared_dir
from training.corpora import encode_corpus, load_mosi
from training.sources import load_emodb, load_taiwan


def _r3(a: np.ndarray, b: np.ndarray) -> float:
    return round(pearson(a, b), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    args = parser.parse_args(argv)
    config = PipelineConfig().with_overrides(weights_dir=args.weights)
    shared = shared_dir()
    results: dict[str, dict[str, float]] = {}
    with Models.load(config, parts=("text", "miar")) as models:
        miar = models.miar
        mosi = load_mosi(shared)["dev"]
        text = encode_corpus(mosi, models.text_encoder, config.text.max_tokens)
        voice, face = load_emodb(shared)["test"], load_taiwan(shared)["test"]
        sets = {"text (MOSI dev)": (text, mosi.labels, 0), "voice (EmoDB held-out speakers)":
                (list(voice.samples), voice.labels, 1), "face (Taiwan held-out performers)":
                (list(face.samples), face.labels, 2)}
        alone = {}
        for name, (samples, labels, j) in sets.items():
            masked = miar.predict_readings(samples)[:, j]
            heads = miar.head_readings(samples)[:, j]
            alone[j] = masked
            for kind, pred in (("fused, others masked", masked), ("head", heads)):
                if j == 0:
                    m = mosi_metrics(pred, labels)
                    row = {"mae": m.mae, "corr": m.corr, "acc2_non0": m.acc2_non0, "acc7": m.acc7}
                else:
                    clear = 1.5 if j == 1 else 1.0
                    row = {"sign": sign_accuracy(pred, labels, clear),
                           "balanced": sign_accuracy(pred, labels, clear, balanced=True),
                           "mae": mae(pred, labels)}
                results[f"{name}: {kind}"] = {k: round(float(v), 4) for k, v in row.items()}
        voice_samples, face_samples = list(voice.samples), list(face.samples)
        mixed, voice_labels, face_labels = [], [], []
        for i, sample in enumerate(text):
            a, v = voice_samples[i % len(voice_samples)], face_samples[i % len(face_samples)]
            mixed.append(replace(sample, audio=a.audio, audio_mask=a.audio_mask, vision=v.vision,
                                 vision_mask=v.vision_mask))
            voice_labels.append(voice.labels[i % len(voice_samples)])
            face_labels.append(face.labels[i % len(face_samples)])
        heads = miar.head_readings(mixed)
        results["one pass, all three present (MOSI dev + held-out voice + face)"] = {
            f"{MODALITIES[1]} head r with text label": _r3(heads[:, 1], mosi.labels),
            f"{MODALITIES[1]} head r with its own label": _r3(heads[:, 1], np.array(voice_labels)),
            f"{MODALITIES[2]} head r with text label": _r3(heads[:, 2], mosi.labels),
            f"{MODALITIES[2]} head r with its own label": _r3(heads[:, 2], np.array(face_labels)),
        }
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
