"""The recognition pipeline: plate detector, then a text recognizer per plate.

Two recognizers can read the plates, chosen by ``PipelineSettings.text_recognizer``:
the fine-tuned plate recognizer ``plate_rec`` (default), which reads several views of
the whole crop in one batch and votes; or the stock PP-OCR pair ``ppocr_det`` +
``ppocr_rec``, which finds text lines on the crop first.

The pipeline only prepares tensors and interprets results; a ``ModelRunner`` executes
the models. In the service the runner is Triton; the benchmark also runs the same
pipeline against onnxruntime in its own process to measure what serving costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from lpr_recognition.inference.errors import InvalidImage
from lpr_recognition.inference.plate_detector import (
    DETECTOR_MAX_PIXELS,
    Detection,
    crop_plate,
    decode_detections,
    letterbox,
)
from lpr_recognition.inference.plate_reader import (
    FIRST_VIEWS,
    VOTE_PADDINGS,
    decode_views,
    merge_candidates,
    plate_reader_input,
    plate_views,
    vote_reads,
)
from lpr_recognition.inference.plate_text import (
    TextLine,
    apply_region_rules,
    candidates,
    choose_plate_line,
    group_lines,
)
from lpr_recognition.inference.text_detector import decode_text_boxes, text_detector_input
from lpr_recognition.inference.text_recognizer import (
    DecodedText,
    ctc_decode,
    recognizer_input,
    rectify_line,
)

PLATE_DETECTOR = "platedet"
TEXT_DETECTOR = "ppocr_det"
TEXT_RECOGNIZER = "ppocr_rec"
PLATE_DETECTOR_INPUT, PLATE_DETECTOR_OUTPUT = "images", "predictions"
PLATE_DETECTOR_ANCHORS = "anchors"
TEXT_DETECTOR_INPUT, TEXT_DETECTOR_OUTPUT = "x", "sigmoid_0.tmp_0"
TEXT_RECOGNIZER_INPUT, TEXT_RECOGNIZER_OUTPUT = "x", "softmax_11.tmp_0"
PLATE_RECOGNIZER = "plate_rec"
PLATE_RECOGNIZER_INPUT, PLATE_RECOGNIZER_OUTPUT = "x", "logits"
# Name of the text recognizer's config parameter holding {output index: plate character}.
ALPHABET_PARAMETER = "plate_characters"


class ModelRunner(Protocol):
    """Runs one model on named input tensors and returns the requested outputs."""

    async def infer(
        self, model: str, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Run ``model``."""
        ...


@dataclass(frozen=True)
class PipelineSettings:
    """Tuning of the pipeline; the defaults are the ones measured by bench/recognition.py."""

    detector_confidence: float = 0.25
    # Pixels of the scaled image the detector sees at most, besides the longest side
    # (plate_detector.DETECTOR_MAX_PIXELS); None bounds the longest side only.
    detector_max_pixels: int | None = DETECTOR_MAX_PIXELS
    detector_iou: float = 0.5
    crop_padding: float = 0.2
    text_detector_min_side: int = 256
    max_plates: int = 10
    text_recognizer: str = PLATE_RECOGNIZER
    vote_paddings: tuple[float, ...] = VOTE_PADDINGS
    first_views: int = FIRST_VIEWS
    max_candidates: int = 10


def pipeline_models(settings: PipelineSettings | None = None) -> tuple[str, ...]:
    """The Triton models a pipeline with ``settings`` calls."""
    settings = settings or PipelineSettings()
    if settings.text_recognizer == TEXT_RECOGNIZER:
        return (PLATE_DETECTOR, TEXT_DETECTOR, TEXT_RECOGNIZER)
    return (PLATE_DETECTOR, settings.text_recognizer)


@dataclass(frozen=True)
class PlateResult:
    """One plate found in an image.

    Attributes:
        text: Plate characters (upper-case letters and digits), empty when unreadable.
        confidence: Mean character probability of ``text``.
        detection_confidence: The plate detector's score for the box.
        box: (x, y, width, height) of the plate in image pixels.
        region: The region whose plate rules were applied, if any.
        candidates: Up to ``max_candidates`` (text, confidence) readings, best first,
            for hot-list matching.
        character_confidences: Probability of each character of ``text``.
    """

    text: str
    confidence: float
    detection_confidence: float
    box: tuple[int, int, int, int]
    region: str | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    character_confidences: tuple[float, ...] = ()


def decode_image(image_bytes: bytes) -> npt.NDArray[np.uint8]:
    """Decode JPEG or PNG bytes to a BGR image.

    Raises:
        InvalidImage: The bytes are not a decodable image.
    """
    buffer = np.frombuffer(image_bytes, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None or image.size == 0:
        raise InvalidImage("the image could not be decoded")
    return np.asarray(image, dtype=np.uint8)


class PlatePipeline:
    """Detects plates and reads their text through a ``ModelRunner``."""

    def __init__(
        self,
        runner: ModelRunner,
        alphabet: Mapping[int, str],
        settings: PipelineSettings | None = None,
    ) -> None:
        """Build a pipeline.

        Args:
            runner: Executes the models.
            alphabet: Text recognizer output index -> plate character.
            settings: Thresholds; defaults when omitted.
        """
        self._runner = runner
        self._alphabet = dict(alphabet)
        self._settings = settings or PipelineSettings()

    async def recognize(self, image_bytes: bytes, region: str | None = None) -> list[PlateResult]:
        """Find and read every plate in an encoded image, best first."""
        return await self.recognize_array(decode_image(image_bytes), region)

    async def recognize_array(
        self, image_bgr: npt.NDArray[np.uint8], region: str | None = None
    ) -> list[PlateResult]:
        """Find and read every plate in a BGR image, best first."""
        detections = await self.detect(image_bgr)
        results = await asyncio.gather(
            *(self._read_plate(image_bgr, detection, region) for detection in detections)
        )
        return sorted(results, key=lambda r: -(r.confidence * r.detection_confidence))

    async def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Detection]:
        """Plate boxes in a BGR image."""
        image, transform = letterbox(image_bgr, max_pixels=self._settings.detector_max_pixels)
        outputs = await self._runner.infer(
            PLATE_DETECTOR,
            {PLATE_DETECTOR_INPUT: image},
            [PLATE_DETECTOR_OUTPUT, PLATE_DETECTOR_ANCHORS],
        )
        height, width = image_bgr.shape[:2]
        return decode_detections(
            np.asarray(outputs[PLATE_DETECTOR_OUTPUT]),
            np.asarray(outputs[PLATE_DETECTOR_ANCHORS]),
            transform,
            (width, height),
            confidence_threshold=self._settings.detector_confidence,
            iou_threshold=self._settings.detector_iou,
            max_detections=self._settings.max_plates,
        )

    async def read_crop(self, crop_bgr: npt.NDArray[np.uint8], region: str | None) -> DecodedText:
        """Read the plate number on a plate crop."""
        crop_h, crop_w = crop_bgr.shape[:2]
        detector_input = text_detector_input(crop_bgr, self._settings.text_detector_min_side)
        outputs = await self._runner.infer(
            TEXT_DETECTOR, {TEXT_DETECTOR_INPUT: detector_input}, [TEXT_DETECTOR_OUTPUT]
        )
        boxes = decode_text_boxes(np.asarray(outputs[TEXT_DETECTOR_OUTPUT]), (crop_w, crop_h))
        lines = group_lines(boxes)
        if not lines:
            whole = np.array([[0, 0], [crop_w, 0], [crop_w, crop_h], [0, crop_h]], dtype=np.float32)
            lines = [TextLine(corners=whole, height=float(crop_h), parts=1)]
        images = [rectify_line(crop_bgr, line.corners) for line in lines]
        outputs = await self._runner.infer(
            TEXT_RECOGNIZER,
            {TEXT_RECOGNIZER_INPUT: recognizer_input(images)},
            [TEXT_RECOGNIZER_OUTPUT],
        )
        probabilities = np.asarray(outputs[TEXT_RECOGNIZER_OUTPUT])
        reads = [ctc_decode(probabilities[i], self._alphabet) for i in range(len(lines))]
        chosen = choose_plate_line(lines, reads)
        if chosen is None:
            return DecodedText(text="", probabilities=(), alternatives=())
        return apply_region_rules(reads[chosen], region)

    async def read_views(
        self, image_bgr: npt.NDArray[np.uint8], detection: Detection, region: str | None
    ) -> tuple[DecodedText, list[tuple[str, float]]]:
        """Read a detected plate with the plate recognizer: a few views, more on doubt, voted.

        The first ``settings.first_views`` paddings are read in one call; only when those
        views do not all read the same non-empty text are the other paddings read too,
        and every view votes.

        Returns:
            The voted read after region rules, and the top candidates.
        """
        paddings = self._settings.vote_paddings
        first = max(1, self._settings.first_views)
        reads = await self._read_paddings(image_bgr, detection, paddings[:first])
        if paddings[first:] and (len({read.text for read in reads}) != 1 or not reads[0].text):
            reads += await self._read_paddings(image_bgr, detection, paddings[first:])
        voted = vote_reads(reads)
        read = apply_region_rules(voted.read, region)
        if not read.text:
            return read, []
        # Every other text the views read gets the rules that need no distributions.
        ruled = [
            (apply_region_rules(DecodedText(text, (), ()), region).text, score)
            for text, score in voted.candidates
        ]
        merged = merge_candidates(
            replace(voted, read=read, candidates=tuple(ruled)),
            candidates(read, limit=self._settings.max_candidates),
            self._settings.max_candidates,
        )
        return read, merged

    async def _read_paddings(
        self, image_bgr: npt.NDArray[np.uint8], detection: Detection, paddings: Sequence[float]
    ) -> list[DecodedText]:
        """Greedy reads of the plate cut out at each padding, in one batched call."""
        views = plate_views(image_bgr, detection, paddings)
        outputs = await self._runner.infer(
            self._settings.text_recognizer,
            {PLATE_RECOGNIZER_INPUT: plate_reader_input(views)},
            [PLATE_RECOGNIZER_OUTPUT],
        )
        return decode_views(np.asarray(outputs[PLATE_RECOGNIZER_OUTPUT]), self._alphabet)

    async def _read_plate(
        self, image_bgr: npt.NDArray[np.uint8], detection: Detection, region: str | None
    ) -> PlateResult:
        if self._settings.text_recognizer == TEXT_RECOGNIZER:
            crop, _ = crop_plate(image_bgr, detection, self._settings.crop_padding)
            read = await self.read_crop(crop, region)
            plate_candidates = candidates(read)
        else:
            read, plate_candidates = await self.read_views(image_bgr, detection, region)
        return PlateResult(
            text=read.text,
            confidence=read.confidence,
            detection_confidence=detection.confidence,
            box=(
                round(detection.x1),
                round(detection.y1),
                round(detection.width),
                round(detection.height),
            ),
            region=region,
            candidates=plate_candidates,
            character_confidences=read.probabilities,
        )
