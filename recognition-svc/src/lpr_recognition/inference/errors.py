"""Errors raised by plate recognition."""

from __future__ import annotations


class RecognitionError(Exception):
    """Base class of recognition failures."""


class RecognitionUnavailable(RecognitionError):
    """The inference server cannot be reached, is not ready, or failed; retry later."""


class InvalidImage(RecognitionError):
    """The image bytes cannot be decoded; retrying will not help."""
