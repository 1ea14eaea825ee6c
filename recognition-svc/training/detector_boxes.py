"""The plate detector's own boxes on the dev images, for training on what serving sees.

Runs the served detector (``platedet``, the FP32 copy of its served graph) with the
serving code's pre- and post-processing, and keeps for each plate the detected box
that overlaps the ground truth best (IoU at least 0.3). Run in the workspace venv
before training (``make train-ocr`` does):

    uv run python recognition-svc/training/detector_boxes.py --output build/train-ocr/detector_boxes.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from lpr_recognition.inference.pipeline import (
    PLATE_DETECTOR_ANCHORS,
    PLATE_DETECTOR_INPUT,
    PLATE_DETECTOR_OUTPUT,
    PipelineSettings,
)
from lpr_recognition.inference.plate_detector import box_iou, decode_detections, letterbox
from lpr_recognition.triton.repository import (
    FP32_COPY,
    MODEL_REPOSITORY,
    assemble_model_repository,
)

ROOT = Path(__file__).resolve().parents[2]
MIN_IOU = 0.3


def detector_boxes(data: Path) -> dict[str, list[float]]:
    """Image file name -> detected box (x1, y1, x2, y2) matching its annotated plate."""
    assemble_model_repository(MODEL_REPOSITORY)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(
        str(MODEL_REPOSITORY / "platedet" / "1" / FP32_COPY),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    settings = PipelineSettings()
    boxes: dict[str, list[float]] = {}
    for label in sorted(data.glob("*/*.txt")):
        fields = label.read_text().strip().split("\t")
        if len(fields) < 6:
            continue
        image = cv2.imread(str(label.parent / fields[0]), cv2.IMREAD_COLOR)
        canvas, transform = letterbox(image)
        output, anchors = session.run(
            [PLATE_DETECTOR_OUTPUT, PLATE_DETECTOR_ANCHORS], {PLATE_DETECTOR_INPUT: canvas}
        )
        height, width = image.shape[:2]
        detections = decode_detections(
            np.asarray(output).astype(np.float16),
            np.asarray(anchors),
            transform,
            (width, height),
            confidence_threshold=settings.detector_confidence,
            iou_threshold=settings.detector_iou,
        )
        if not detections:
            continue
        x, y, w, h = (float(v) for v in fields[1:5])
        truth = np.array([x, y, x + w, y + h], dtype=np.float32)
        found = np.array([[d.x1, d.y1, d.x2, d.y2] for d in detections], dtype=np.float32)
        overlaps = box_iou(truth, found)
        best = int(overlaps.argmax())
        if overlaps[best] >= MIN_IOU:
            boxes[fields[0]] = [round(float(v), 1) for v in found[best]]
    return boxes


def main() -> None:
    """Parse arguments, detect, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "plates")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "build" / "train-ocr" / "detector_boxes.json"
    )
    args = parser.parse_args()
    boxes = detector_boxes(args.data)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(boxes, indent=0, sort_keys=True))
    print(f"{len(boxes)} detector boxes matched to annotated plates -> {args.output}")


if __name__ == "__main__":
    main()
