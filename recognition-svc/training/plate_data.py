"""Real plate crops from the dev images: annotations, the validation split, augmentation.

The recognizer sees a plate crop stretched to 48 x 160, BGR scaled to [-1, 1]. The
serving pipeline (lpr_recognition.inference.plate_reader) prepares crops the same way.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

INPUT_HEIGHT, INPUT_WIDTH = 48, 160
REGIONS = ("us", "eu", "br")

Array = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class PlateSample:
    """One annotated plate: image file, box (x, y, w, h) in pixels, text and region."""

    image: Path
    box: tuple[int, int, int, int]
    text: str
    region: str


def normalize_text(text: str) -> str:
    """Upper-case letters and digits only, as plates are scored."""
    return "".join(c for c in text.upper() if c.isascii() and c.isalnum())


def load_samples(root: Path) -> list[PlateSample]:
    """Every annotated plate under ``root/{us,eu,br}``, in a stable order."""
    samples: list[PlateSample] = []
    for region in REGIONS:
        for label in sorted((root / region).glob("*.txt")):
            for line in label.read_text().splitlines():
                fields = line.split("\t")
                if len(fields) < 6:
                    continue
                x, y, w, h = (int(float(v)) for v in fields[1:5])
                samples.append(
                    PlateSample(
                        image=label.parent / fields[0],
                        box=(x, y, w, h),
                        text=normalize_text(fields[5]),
                        region=region,
                    )
                )
    return samples


def split_samples(
    samples: list[PlateSample], seed: int, validation_fraction: float = 0.2
) -> tuple[list[PlateSample], list[PlateSample]]:
    """Split into (train, validation), the same fraction of each region, reproducibly."""
    rng = random.Random(seed)
    train: list[PlateSample] = []
    validation: list[PlateSample] = []
    for region in REGIONS:
        members = [s for s in samples if s.region == region]
        rng.shuffle(members)
        cut = round(len(members) * validation_fraction)
        validation.extend(members[:cut])
        train.extend(members[cut:])
    return train, validation


def crop_box(
    image: Array, box: tuple[float, float, float, float], pads: tuple[float, float, float, float]
) -> Array:
    """Crop a box grown by (left, top, right, bottom) fractions of its size; edges replicate."""
    x, y, w, h = box
    left = round(x - pads[0] * w)
    top = round(y - pads[1] * h)
    right = round(x + w + pads[2] * w)
    bottom = round(y + h + pads[3] * h)
    right, bottom = max(right, left + 2), max(bottom, top + 2)
    height, width = image.shape[:2]
    border = max(0, -left, -top, right - width, bottom - height)
    if border:
        image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
        left, top, right, bottom = left + border, top + border, right + border, bottom + border
    return np.ascontiguousarray(image[top:bottom, left:right])


def to_input(crop: Array) -> npt.NDArray[np.float32]:
    """One crop as the recognizer's [3, 48, 160] input."""
    resized = cv2.resize(crop, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.asarray((resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5)


def degrade(image: Array, rng: random.Random, strength: float = 1.0) -> Array:
    """Photometric damage seen on real cameras: colour, light, blur, resolution, JPEG.

    Args:
        image: BGR crop.
        rng: Random source.
        strength: Scales how often each kind of damage is applied (real crops, already
            damaged by their camera, get less).
    """
    out = image.astype(np.float32)
    out = out * rng.uniform(0.7, 1.25) + rng.uniform(-30, 30)
    out = out * np.array([rng.uniform(0.85, 1.15) for _ in range(3)], dtype=np.float32)
    if rng.random() < 0.25 * strength:
        gray = out.mean(axis=2, keepdims=True)
        out = gray + (out - gray) * rng.uniform(0.0, 0.8)
    if rng.random() < 0.3 * strength:
        # Uneven light across the plate (sun, shade, headlights).
        width = out.shape[1]
        ramp = np.linspace(rng.uniform(-40, 10), rng.uniform(-10, 40), width, dtype=np.float32)
        out = out + ramp[None, :, None]
    if rng.random() < 0.3 * strength:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 8), out.shape)
        out = out + noise
    result = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.35 * strength:
        # Plates far from the camera: few pixels, upscaled again.
        h, w = result.shape[:2]
        scale = rng.uniform(0.35, 0.85)
        small = cv2.resize(
            result, (max(8, int(w * scale)), max(4, int(h * scale))), interpolation=cv2.INTER_AREA
        )
        result = cv2.resize(
            small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC])
        )
    if rng.random() < 0.25 * strength:
        result = cv2.GaussianBlur(result, (3, 3), rng.uniform(0.5, 1.2))
    if rng.random() < 0.1 * strength:
        # Motion blur along the road.
        k = rng.choice([3, 5])
        kernel = np.zeros((k, k), dtype=np.float32)
        kernel[k // 2, :] = 1.0 / k
        result = cv2.filter2D(result, -1, kernel)
    if rng.random() < 0.5 * strength:
        buffer = io.BytesIO()
        Image.fromarray(result[:, :, ::-1]).save(buffer, format="JPEG", quality=rng.randint(25, 90))
        result = np.asarray(Image.open(buffer))[:, :, ::-1].copy()
    return result


class RealCrops:
    """Augmented crops of the training plates; images are decoded once and kept."""

    def __init__(
        self,
        samples: list[PlateSample],
        detector_boxes: dict[str, tuple[float, float, float, float]] | None = None,
    ) -> None:
        """Load the images of ``samples``.

        Args:
            samples: The plates.
            detector_boxes: Image file name -> the plate detector's (x1, y1, x2, y2) box;
                when given, half the crops are cut from it instead of the annotation.
        """
        self.samples = samples
        self.detector_boxes = detector_boxes
        self._images: dict[Path, Array] = {}
        for sample in samples:
            if sample.image not in self._images:
                self._images[sample.image] = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)

    def image(self, sample: PlateSample) -> Array:
        """The decoded image of a sample."""
        return self._images[sample.image]

    def augmented(self, index: int, rng: random.Random) -> Array:
        """A randomly padded, rotated and degraded crop of sample ``index``."""
        sample = self.samples[index]
        image = self._images[sample.image]
        x, y, w, h = (float(v) for v in sample.box)
        jitter_x, jitter_y = 0.04, 0.06
        if self.detector_boxes is not None:
            detected = self.detector_boxes.get(sample.image.name)
            if detected is not None and rng.random() < 0.5:
                # What serving sees: the detector's own box, jittered less.
                x, y, w, h = (
                    detected[0],
                    detected[1],
                    detected[2] - detected[0],
                    detected[3] - detected[1],
                )
                jitter_x, jitter_y = 0.02, 0.03
        # The detector's boxes are looser or tighter than the annotation: jitter the box.
        x += rng.uniform(-jitter_x, jitter_x) * w
        y += rng.uniform(-jitter_y, jitter_y) * h
        pads = (
            rng.uniform(-0.03, 0.27),
            rng.uniform(-0.03, 0.27),
            rng.uniform(-0.03, 0.27),
            rng.uniform(-0.03, 0.27),
        )
        # Crop with a margin so a small rotation does not pull in border replication.
        margin = 0.25
        big = crop_box(
            image,
            (x, y, w, h),
            (
                pads[0] + margin,
                pads[1] + margin * w / h / 2,
                pads[2] + margin,
                pads[3] + margin * w / h / 2,
            ),
        )
        bh, bw = big.shape[:2]
        angle = rng.uniform(-4, 4)
        matrix = cv2.getRotationMatrix2D((bw / 2, bh / 2), angle, 1.0)
        shear = rng.uniform(-0.08, 0.08)
        matrix[0, 1] += shear
        matrix[0, 2] -= shear * bh / 2
        big = cv2.warpAffine(big, matrix, (bw, bh), borderMode=cv2.BORDER_REPLICATE)
        inner_left = margin * w
        inner_top = margin * w / 2
        crop_w = w * (1 + pads[0] + pads[2])
        crop_h = h * (1 + pads[1] + pads[3])
        left, top = round(inner_left), round(inner_top)
        crop = big[top : top + max(2, round(crop_h)), left : left + max(2, round(crop_w))]
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            crop = crop_box(image, sample.box, (0.1, 0.1, 0.1, 0.1))
        return degrade(np.ascontiguousarray(crop), rng, strength=0.6)
