"""Plate recognition accuracy and speed, end to end through Triton.

Runs the detector and OCR pipeline on every image of ``DATA/{us,eu,br}`` through the
Triton server at ``TRITON_URL`` (starting the CPU server from the nvidia-pytriton
wheel when none answers, and stopping it afterwards), then the same pipeline with
onnxruntime in this process as a baseline, and prints per set: detection recall,
top-1 exact accuracy, accuracy within one character, images/s, p50/p95 latency, and
the ratio of Triton's time to the baseline's. The last line is one JSON object.

Where a ground-truth label is wrong (``bench/label_errata.json``: the label, the plate's
real text and why), ``top1`` still scores against the label as shipped and
``top1_with_errata`` against the corrected text; the table shows the second only for
sets an erratum touches.

It also prints the cost per image on one core next to open-source OpenALPR's 358 ms
median on one core, two ways: ``cpu_ms_per_image`` is the CPU time this process and a
Triton server it started (with its Python backend stubs) spent per image, which other
load on the machine does not inflate; ``ms_per_image_per_core`` is wall time per image
times the machine's cores, an upper bound that does.

Usage: uv run python bench/recognition.py [--data DIR] [--limit N] [--concurrency C]
       [--recognizer plate_rec|ppocr_rec] [--detector-max-pixels N]
       [--split build/train-ocr/split.json --part validation]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._cpu import cpu_seconds
from bench._onnxruntime_pipeline import OnnxRuntimeRunner
from lpr_recognition.inference.errors import RecognitionUnavailable
from lpr_recognition.inference.pipeline import (
    PLATE_RECOGNIZER,
    TEXT_RECOGNIZER,
    PipelineSettings,
    PlatePipeline,
    PlateResult,
    pipeline_models,
)
from lpr_recognition.inference.plate_detector import box_iou
from lpr_recognition.inference.plate_text import normalize_plate
from lpr_recognition.inference.triton_client import TritonRecognizer
from lpr_recognition.triton.repository import MODEL_REPOSITORY, assemble_model_repository
from lpr_recognition.triton.server import TritonPorts, TritonServer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "plates"
SETS = ("us", "eu", "br")
# A detection finds the plate when it overlaps the ground-truth box this much.
DETECTION_IOU = 0.5
# Ground-truth labels known to be wrong, "SET/NAME" -> {labelled, plate, reason}.
ERRATA_FILE = Path(__file__).resolve().parent / "label_errata.json"
# Open-source OpenALPR, measured on the US set on one core (shared/data/plates/README.md).
OPENALPR_MS_PER_IMAGE_ONE_CORE = 358.0
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Sample:
    """One benchmark image and its ground truth."""

    name: str
    image: bytes
    plate: str
    box: tuple[int, int, int, int]
    corrected: str | None = None
    """The plate's real text where the label is wrong (bench/label_errata.json)."""


@dataclass(frozen=True)
class SetResult:
    """Scores and timings of one pipeline on one set."""

    n: int
    detect_recall: float
    top1: float
    top1_with_errata: float
    errata: int
    within1: float
    images_per_s: float
    p50_ms: float
    p95_ms: float
    cpu_ms_per_image: float

    @property
    def ms_per_image_per_core(self) -> float:
        """Wall time per image times the machine's cores: CPU cost if every core was busy."""
        return 1000.0 * CORES / self.images_per_s

    def as_dict(self) -> dict[str, float | int]:
        """Rounded figures for the JSON line."""
        return {
            "n": self.n,
            "detect_recall": round(self.detect_recall, 4),
            "top1": round(self.top1, 4),
            "top1_with_errata": round(self.top1_with_errata, 4),
            "within1": round(self.within1, 4),
            "images_per_s": round(self.images_per_s, 2),
            "p50_ms": round(self.p50_ms, 1),
            "p95_ms": round(self.p95_ms, 1),
            "ms_per_image_per_core": round(self.ms_per_image_per_core, 1),
            "cpu_ms_per_image": round(self.cpu_ms_per_image, 1),
        }


def load_errata(path: Path = ERRATA_FILE) -> dict[str, tuple[str, str]]:
    """``"SET/NAME"`` -> (the label as shipped, the plate's real text) for wrong labels.

    Each entry names the label it corrects: if the data set's label is ever fixed or
    changed, the benchmark stops and says so instead of scoring against a stale erratum.
    """
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())
    return {key: (entry["labelled"], entry["plate"]) for key, entry in entries.items()}


def load_set(
    directory: Path,
    limit: int | None,
    only: frozenset[str] | None = None,
    errata: dict[str, tuple[str, str]] | None = None,
) -> list[Sample]:
    """Read ``NAME.txt`` ground truth files (file, x, y, w, h, plate) and their images.

    Args:
        directory: One set's folder.
        limit: Read only the first N images.
        only: Image file names to keep (a split of the training pipeline), or all.
        errata: Known wrong labels (:func:`load_errata`).
    """
    samples: list[Sample] = []
    for truth in sorted(directory.glob("*.txt"))[:limit]:
        fields = truth.read_text().strip().split("\t")
        if len(fields) < 6 or (only is not None and fields[0] not in only):
            continue
        image = directory / fields[0]
        x, y, w, h = (int(v) for v in fields[1:5])
        plate = normalize_plate(fields[5])
        corrected = None
        erratum = (errata or {}).get(f"{directory.name}/{truth.stem}")
        if erratum is not None:
            labelled, corrected = erratum
            if normalize_plate(labelled) != plate:
                raise SystemExit(
                    f"label_errata.json corrects {directory.name}/{truth.stem} labelled "
                    f"{labelled!r}, but its label is now {fields[5]!r}: update the erratum"
                )
        samples.append(Sample(truth.stem, image.read_bytes(), plate, (x, y, w, h), corrected))
    return samples


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def detected(sample: Sample, plates: Sequence[PlateResult]) -> bool:
    """Whether any plate box overlaps the ground truth box enough."""
    if not plates:
        return False
    x, y, w, h = sample.box
    truth = np.array([x, y, x + w, y + h], dtype=np.float32)
    boxes = np.array(
        [[p.box[0], p.box[1], p.box[0] + p.box[2], p.box[1] + p.box[3]] for p in plates],
        dtype=np.float32,
    )
    return bool(box_iou(truth, boxes).max() >= DETECTION_IOU)


async def run_set(
    pipeline: PlatePipeline, samples: Sequence[Sample], region: str, concurrency: int
) -> tuple[SetResult, list[tuple[str, str, str]]]:
    """Recognize a set with ``concurrency`` images in flight; score and time it."""
    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(sample: Sample) -> list[PlateResult]:
        async with limit:
            start = time.perf_counter()
            plates = await pipeline.recognize(sample.image, region)
            latencies.append(time.perf_counter() - start)
            return plates

    # Warm-up, not timed: every model instance runs once (an instance's first run
    # allocates its buffers), so a short set is not charged for the server's start.
    warm = [samples[i % len(samples)] for i in range(2 * concurrency)]
    await asyncio.gather(*(pipeline.recognize(sample.image, region) for sample in warm))
    start, cpu_start = time.perf_counter(), cpu_seconds(psutil.Process())
    results = await asyncio.gather(*(one(sample) for sample in samples))
    elapsed, cpu_used = time.perf_counter() - start, cpu_seconds(psutil.Process()) - cpu_start
    found = exact = exact_errata = close = 0
    misses: list[tuple[str, str, str]] = []
    for sample, plates in zip(samples, results, strict=True):
        found += detected(sample, plates)
        top = next((p.text for p in plates if p.text), "")
        exact += top == sample.plate
        exact_errata += top == (sample.corrected or sample.plate)
        close += edit_distance(top, sample.plate) <= 1
        if top != sample.plate:
            misses.append((sample.name, sample.plate, top))
    n = len(samples)
    latencies_ms = sorted(1000 * t for t in latencies)
    return (
        SetResult(
            n=n,
            detect_recall=found / n,
            top1=exact / n,
            top1_with_errata=exact_errata / n,
            errata=sum(sample.corrected is not None for sample in samples),
            within1=close / n,
            images_per_s=n / elapsed,
            p50_ms=statistics.median(latencies_ms),
            p95_ms=latencies_ms[min(n - 1, round(0.95 * (n - 1)))],
            cpu_ms_per_image=1000 * cpu_used / n,
        ),
        misses,
    )


async def triton_answers(url: str, settings: PipelineSettings) -> bool:
    """Whether a Triton server with the pipeline's models is ready at ``url``."""
    async with TritonRecognizer(url, timeout_s=2.0, settings=settings) as recognizer:
        return await recognizer.is_ready()


def print_row(label: str, result: SetResult) -> None:
    """One line of the human-readable table."""
    print(
        f"{label:<16} n={result.n:<4} recall={result.detect_recall:6.1%} top1={result.top1:6.1%}"
        + (
            f" ({result.top1_with_errata:.1%} with {result.errata} label erratum"
            f"{'s' if result.errata > 1 else ''})"
            if result.errata
            else ""
        )
        + f" within1={result.within1:6.1%} {result.images_per_s:5.2f} img/s"
        f" p50={result.p50_ms:6.0f} ms p95={result.p95_ms:6.0f} ms"
        f" cpu={result.cpu_ms_per_image:4.0f} ms/image"
        f" ({OPENALPR_MS_PER_IMAGE_ONE_CORE / result.cpu_ms_per_image:.1f}x OpenALPR's"
        f" {OPENALPR_MS_PER_IMAGE_ONE_CORE:.0f} ms on one core;"
        f" wall x cores {result.ms_per_image_per_core:.0f} ms)",
        flush=True,
    )


async def benchmark(args: argparse.Namespace) -> dict[str, object]:
    """Run both pipelines on every set and return the JSON summary."""
    data = Path(args.data)
    only: frozenset[str] | None = None
    if args.split:
        only = frozenset(json.loads(Path(args.split).read_text())[args.part])
    settings = PipelineSettings(
        text_recognizer=args.recognizer,
        detector_max_pixels=args.detector_max_pixels or None,
    )
    errata = load_errata()
    sets = {
        name: load_set(data / name, args.limit, only, errata)
        for name in SETS
        if (data / name).is_dir()
    }
    sets = {name: samples for name, samples in sets.items() if samples}
    if not sets:
        raise SystemExit(f"no images with ground truth under {data}/{{{','.join(SETS)}}}")
    url = os.environ.get("TRITON_URL", "localhost:8101")
    server: TritonServer | None = None
    work_dir = tempfile.TemporaryDirectory(prefix="lpr-bench-triton-")
    started = time.perf_counter()
    if not await triton_answers(url, settings):
        print(
            f"no Triton at {url}; starting the CPU server from the nvidia-pytriton wheel",
            flush=True,
        )
        assemble_model_repository(MODEL_REPOSITORY)
        port = int(url.rsplit(":", 1)[1]) if ":" in url else 8101
        server = TritonServer(
            MODEL_REPOSITORY,
            Path(work_dir.name),
            ports=TritonPorts(http=port - 1, grpc=port, metrics=port + 1),
        )
        server.start()
        server.wait_ready(timeout=180)
    summary: dict[str, object] = {}
    triton_seconds = baseline_seconds = 0.0
    try:
        async with TritonRecognizer(
            url, timeout_s=60.0, max_concurrency=args.concurrency, settings=settings
        ) as recognizer:
            await recognizer.wait_ready(30)
            triton_pipeline = await recognizer._get_pipeline()
            for name, samples in sets.items():
                result, misses = await run_set(triton_pipeline, samples, name, args.concurrency)
                print_row(f"{name} triton", result)
                if args.show_misses:
                    for miss in misses:
                        print("   miss", *miss)
                summary[name] = result.as_dict()
                triton_seconds += result.n / result.images_per_s
    except RecognitionUnavailable as error:
        raise SystemExit(f"Triton failed: {error}")
    finally:
        if server is not None:
            server.stop()
        work_dir.cleanup()
    models = pipeline_models(settings)
    runner = OnnxRuntimeRunner(MODEL_REPOSITORY, models, threads=1)
    baseline = PlatePipeline(runner, runner.alphabet(settings.text_recognizer), settings)
    for name, samples in sets.items():
        result, _ = await run_set(baseline, samples, name, args.concurrency)
        print_row(f"{name} onnxruntime", result)
        baseline_seconds += result.n / result.images_per_s
    summary["triton_overhead_ratio"] = round(triton_seconds / baseline_seconds, 3)
    summary["recognizer"] = settings.text_recognizer
    summary["detector_max_pixels"] = settings.detector_max_pixels
    summary["cores"] = CORES
    summary["openalpr_ms_per_image_one_core"] = OPENALPR_MS_PER_IMAGE_ONE_CORE
    print(
        f"Triton overhead ratio (time per image, Triton / in-process): "
        f"{summary['triton_overhead_ratio']}; whole run {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return summary


def main() -> None:
    """Parse arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with us/, eu/, br/")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--concurrency", type=int, default=2, help="images in flight")
    parser.add_argument("--show-misses", action="store_true", help="list wrong reads")
    parser.add_argument(
        "--recognizer",
        choices=(PLATE_RECOGNIZER, TEXT_RECOGNIZER),
        default=PipelineSettings().text_recognizer,
        help="plate_rec: the fine-tuned plate recognizer; ppocr_rec: stock PP-OCR pair",
    )
    parser.add_argument(
        "--detector-max-pixels",
        type=int,
        default=PipelineSettings().detector_max_pixels or 0,
        help="most pixels of the detector's scaled image; 0: only the longest side is bounded",
    )
    parser.add_argument("--split", help="split.json of the training pipeline: score one part")
    parser.add_argument("--part", default="validation", help="part of --split to score")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(benchmark(args))), flush=True)


if __name__ == "__main__":
    main()
