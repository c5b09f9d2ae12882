"""MIAR, the sentiment model. The core takes named arrays and returns scores; it never sees media.

Core modules (import nothing from ``extractors`` or ``pipeline``): ``model.schema``
(modality names, score scale, neutral band), ``model.errors``, ``model.batch`` (samples
and padded batches), ``model.miar`` (the network), ``model.checkpoint`` (weights folders),
``model.metrics``, ``model.feature_store`` (the features-folder format). Training and
evaluation live above the product, in the top-level ``training`` package.

Nothing is imported here, so ``import model.errors`` stays free of torch.
"""

__all__: list[str] = []
