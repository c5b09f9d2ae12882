"""Extractors: one module per modality, each turning media into typed records."""

__all__: list[str] = []
