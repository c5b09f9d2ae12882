"""Training and evaluation of MIAR: the only model code that may call the extractors.

Modules: ``corpora`` (MOSI, VADER, SST-5 and MELD text, encoded once and cached),
``sources`` (EmoDB, speech_valence and face photos through the project's extractors),
``assemble`` (curated sources or a features folder -> ``TrainingData``), ``loop`` (the one
training loop and its options), ``train`` (``python -m training.train``) and
``evaluate`` (``python -m training.evaluate``). Configs live in ``configs/``.

Nothing outside this package (and the tests) imports it; it may import the storage
helpers, the extractors, the model core and ``pipeline.models`` / ``pipeline.config``.
Nothing is imported here.
"""

__all__: list[str] = []
