"""Punctuation at inference: score MOSEI valid as transcribed (punctuated) and as the pipeline normalises it.

    python bench/punctuation.py [--weights weights/miar-v4]

Whisper writes punctuation and case; training text (MOSI's transcripts have none; MOSEI,
VADER and SST-5 have it) goes through ``extractors.text.normalise_text``, which lower-cases
and strips punctuation, and the pipeline does the same to recognised words. This measures,
on held-out punctuated text (MOSEI valid), what keeping the punctuation at inference would
do to weights trained on normalised text. Case is moot: MiniLM's tokenizer is uncased.
"""

from __future__ import annotations

import argparse
import html
import unicodedata

import numpy as np

from model.batch import SampleInput
from model.feature_store import LABEL_FILE, read_label_rows
from model.metrics import mosi_metrics
from pipeline.config import PipelineConfig
from pipeline.models import Models
from storage.locations import shared_dir
from training.corpora import load_mosei


def _punctuated_words(text: str) -> list[str]:
    """The source text split on spaces, NFKC-normalised and lower-cased, punctuation kept."""
    return unicodedata.normalize("NFKC", text).lower().split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/punctuation.py", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the pipeline's)")
    args = parser.parse_args(argv)
    config = PipelineConfig().with_overrides(weights_dir=args.weights)
    rows = []
    for _, row in read_label_rows(shared_dir() / "data" / "mosei" / LABEL_FILE, ("text", "label", "mode")):
        if row["mode"] == "valid":
            rows.append((html.unescape(row["text"]), float(row["label"])))
    normalised = load_mosei()["valid"]
    labels = np.array([y for _, y in rows], np.float32)
    assert len(normalised) == len(rows) and np.allclose(normalised.labels, labels)
    with Models.load(config, parts=("text", "miar")) as models:
        assert models.text_encoder is not None and models.miar is not None
        for name, word_lists in (("stripped (what the pipeline feeds)", [t.split() for t in normalised.texts]),
                                 ("punctuation kept", [_punctuated_words(t) for t, _ in rows])):
            feats = models.text_encoder.encode_batch(word_lists)
            samples = [SampleInput(text=f.values, text_mask=np.ones(len(f.values), bool)) for f in feats]
            m = mosi_metrics(models.miar.predict(samples), labels)
            print(f"MOSEI valid, {name}: MAE {m.mae:.3f}  Corr {m.corr:.3f}  Acc-2 non-0 {100 * m.acc2_non0:.1f}  "
                  f"Acc-7 {100 * m.acc7:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
