"""Plate recognition: numpy pre- and post-processing and the Triton client."""

from lpr_recognition.inference.errors import InvalidImage, RecognitionError, RecognitionUnavailable
from lpr_recognition.inference.pipeline import PipelineSettings, PlatePipeline, PlateResult
from lpr_recognition.inference.triton_client import TritonRecognizer

__all__ = [
    "InvalidImage",
    "PipelineSettings",
    "PlatePipeline",
    "PlateResult",
    "RecognitionError",
    "RecognitionUnavailable",
    "TritonRecognizer",
]
