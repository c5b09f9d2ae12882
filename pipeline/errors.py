"""Errors the pipeline raises, and the group the CLI reports as one line.

Anything outside ``USER_ERRORS`` is a bug: the CLI lets it keep its traceback.
Light on purpose (no NumPy, no torch): the CLI imports it before it knows whether
any model is needed.
"""

from __future__ import annotations

from extractors.errors import ExtractionError
from model.errors import CheckpointError

__all__ = ["PipelineError", "OutputError", "UnsupportedLanguageError", "USER_ERRORS"]


class PipelineError(Exception):
    """A problem with how the pipeline was asked to run (bad path, bad option)."""


class OutputError(PipelineError):
    """Results cannot be written (folder not writable, disk full)."""


class UnsupportedLanguageError(PipelineError):
    """The speech is not English: the sentiment model reads English only."""


#: Errors caused by the input or the set-up, not by a bug: reported in one line.
USER_ERRORS: tuple[type[Exception], ...] = (ExtractionError, CheckpointError, PipelineError)
