"""Training and evaluation of MIAR, built on the product's own stage sequence and text path.

Modules: ``corpora`` (MOSI, VADER, SST-5 and MELD text, encoded once and cached),
``sources`` (EmoDB, speech_valence and face photos through the project's extractors),
``assemble`` (curated sources or a features folder -> ``TrainingData``), ``loop`` (the one
training loop and its options), ``train`` (``python -m training.train``) and
``evaluate`` (``python -m training.evaluate``). Configs live in ``configs/``.

Layering (``tests/test_layering.py``, one rule for every room): storage -> extractors ->
model (core) -> pipeline -> training -> bench, examples; a module imports its own room or one
below it, never above. Training sits above the pipeline so that it sees exactly what inference
computes (the stage sequence, the model holder, the text path); nothing below imports it.
Nothing is imported here.
"""

__all__: list[str] = []
