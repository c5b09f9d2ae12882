"""Exceptions raised by the extractors.

Every error names what went wrong, where, and what the user can do about it. The
pipeline groups the user-facing ones in ``pipeline.errors.USER_ERRORS`` so that the
CLI reports them as one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ExtractionError",
    "MediaError",
    "NoAudioTrackError",
    "NoVideoTrackError",
    "ModelNotFoundError",
]


class ExtractionError(Exception):
    """Base class of every error an extractor raises on purpose."""


class MediaError(ExtractionError):
    """The input cannot be read as media: missing, empty, corrupt, unsupported codec."""


class NoAudioTrackError(MediaError):
    """The file has no audio stream, so there is nothing to transcribe."""


class NoVideoTrackError(MediaError):
    """The file has no video stream (raised only where frames are required)."""


class ModelNotFoundError(ExtractionError):
    """A model file that should ship inside an installed package is not there."""
