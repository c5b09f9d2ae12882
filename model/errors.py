"""The model core's error, in a module of its own so that importing it costs nothing.

``pipeline.errors`` groups it with the other user-facing errors; the CLI imports that
group before it has decided whether torch is needed at all.
"""

from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(Exception):
    """Weights are missing, corrupt, or made for different features than the extractors give."""
