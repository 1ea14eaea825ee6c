"""Measure each US plate rule and each set of voted views on the validation split.

Runs the exported plate recognizer with onnxruntime through the serving code's own
pre- and post-processing (lpr_recognition.inference), on ground-truth boxes of the
validation plates (split.json of train_ocr.py). For every rule in ``US_RULES`` it
counts reads the rule corrects and reads it breaks; a rule may be applied only when
it breaks none. Run in the workspace venv:

    uv run python recognition-svc/training/measure_rules.py --split build/train-ocr/split.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from lpr_recognition.inference.plate_detector import Detection
from lpr_recognition.inference.plate_reader import (
    VOTE_PADDINGS,
    decode_views,
    plate_reader_input,
    plate_views,
    vote_reads,
)
from lpr_recognition.inference.plate_text import US_RULES, normalize_plate
from lpr_recognition.inference.text_recognizer import DecodedText

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "recognition-svc" / "model_repository" / "plate_rec" / "1" / "model.onnx"
VIEW_SETS = {
    "single 0.15": (0.15,),
    "3 views": (0.15, 0.1, 0.2),
    "5 views (served)": VOTE_PADDINGS,
    "7 views": (*VOTE_PADDINGS, 0.25, -0.03),
}


def _plates(data: Path, names: set[str]) -> list[tuple[str, Path, Detection, str]]:
    plates = []
    for region in ("us", "eu", "br"):
        for label in sorted((data / region).glob("*.txt")):
            fields = label.read_text().strip().split("\t")
            if len(fields) < 6 or fields[0] not in names:
                continue
            x, y, w, h = (float(v) for v in fields[1:5])
            box = Detection(x1=x, y1=y, x2=x + w, y2=y + h, confidence=1.0)
            plates.append((region, label.parent / fields[0], box, normalize_plate(fields[5])))
    return plates


def measure(model: Path, data: Path, names: set[str]) -> dict[str, object]:
    """Accuracy of each view set and (fixed, broken) counts of each US rule."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    dictionary = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    alphabet = {i + 1: char for i, char in enumerate(dictionary)}
    plates = _plates(data, names)
    views: dict[str, dict[str, list[bool]]] = {name: {} for name in VIEW_SETS}
    rules = {name: {"fixed": 0, "broken": 0, "changed": 0} for name in US_RULES}
    for region, image_path, box, truth in plates:
        image = np.asarray(cv2.imread(str(image_path), cv2.IMREAD_COLOR), dtype=np.uint8)
        voted_reads: dict[str, DecodedText] = {}
        for name, paddings in VIEW_SETS.items():
            batch = plate_reader_input(plate_views(image, box, paddings))
            reads = decode_views(np.asarray(session.run(None, {"x": batch})[0]), alphabet)
            voted_reads[name] = vote_reads(reads).read
            views[name].setdefault(region, []).append(voted_reads[name].text == truth)
        if region != "us":
            continue
        read = voted_reads["5 views (served)"]
        for name, rule in US_RULES.items():
            after = rule(read).text
            if after != read.text:
                rules[name]["changed"] += 1
                rules[name]["fixed"] += after == truth
                rules[name]["broken"] += read.text == truth
    return {
        "plates": len(plates),
        "view_sets": {
            name: {region: round(float(np.mean(flags)), 4) for region, flags in per.items()}
            for name, per in views.items()
        },
        "us_rules": rules,
    }


def main() -> None:
    """Parse arguments, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", type=Path, default=ROOT / "build" / "train-ocr" / "split.json")
    parser.add_argument("--part", default="validation")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "plates")
    parser.add_argument("--model", type=Path, default=MODEL)
    args = parser.parse_args()
    names = set(json.loads(args.split.read_text())[args.part])
    print(json.dumps(measure(args.model, args.data, names), indent=1))


if __name__ == "__main__":
    main()
