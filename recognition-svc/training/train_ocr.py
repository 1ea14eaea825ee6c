"""Fine-tune the PP-OCRv4 recognizer on plates, pick a checkpoint, export it to ONNX.

Run with the training venv (``make train-ocr`` builds it):

    .venv-train/bin/python recognition-svc/training/train_ocr.py --seed 20261129

Every random choice flows from ``--seed``: the validation split, the synthetic plates,
the order and augmentation of the real crops, and torch's initial state. The checkpoint
is chosen on the validation split of the dev images only.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from convert import PLATE_CHARACTERS, base_model_path, base_torch_model, make_trainable
from plate_data import (
    REGIONS,
    PlateSample,
    RealCrops,
    crop_box,
    load_samples,
    split_samples,
    to_input,
)
from synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "plates"
DEFAULT_OUTPUT = ROOT / "build" / "train-ocr"
MODEL_TARGET = ROOT / "recognition-svc" / "model_repository" / "plate_rec" / "1" / "model.onnx"
# Paddings (fraction of the box per side) whose reads are voted; the same views the
# serving pipeline uses (lpr_recognition.inference.plate_reader.VOTE_PADDINGS).
VOTE_PADDINGS = (0.15, 0.1, 0.05, 0.2, 0.0)
SINGLE_PADDING = 0.15


def encode(text: str) -> list[int]:
    """Class indices of a label (blank is 0)."""
    return [PLATE_CHARACTERS.index(c) + 1 for c in text if c in PLATE_CHARACTERS]


def greedy_decode(logits: npt.NDArray[np.float32]) -> tuple[str, float]:
    """Best path of one [time, classes] output: text and mean character probability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    chars: list[str] = []
    confidences: list[float] = []
    previous = 0
    for step, index in enumerate(best):
        if index != previous and index != 0:
            chars.append(PLATE_CHARACTERS[index - 1])
            confidences.append(float(probabilities[step, index]))
        previous = int(index)
    return "".join(chars), float(np.mean(confidences)) if confidences else 0.0


def vote(reads: list[tuple[str, float]]) -> str:
    """The text with the highest summed confidence over views."""
    scores: dict[str, float] = defaultdict(float)
    for text, confidence in reads:
        if text:
            scores[text] += confidence
    return max(scores, key=lambda t: scores[t]) if scores else ""


def evaluate(
    run: object, samples: list[PlateSample], crops: RealCrops
) -> dict[str, dict[str, float]]:
    """Exact-match accuracy per region on ground-truth boxes: one view, and voted views.

    Args:
        run: Callable taking a [N, 3, 48, 160] float32 array and returning [N, T, 37] logits.
        samples: Validation plates.
        crops: Holds the decoded images of ``samples``.
    """
    results: dict[str, dict[str, list[bool]]] = {r: {"single": [], "voted": []} for r in REGIONS}
    for sample in samples:
        image = crops.image(sample)
        batch = np.stack(
            [to_input(crop_box(image, sample.box, (p, p, p, p))) for p in VOTE_PADDINGS]
        )
        logits = run(batch)  # type: ignore[operator]
        reads = [greedy_decode(logits[i]) for i in range(len(VOTE_PADDINGS))]
        results[sample.region]["single"].append(reads[0][0] == sample.text)
        results[sample.region]["voted"].append(vote(reads) == sample.text)
    summary: dict[str, dict[str, float]] = {}
    for region, flags in results.items():
        summary[region] = {
            "n": float(len(flags["single"])),
            "single": float(np.mean(flags["single"])) if flags["single"] else 0.0,
            "voted": float(np.mean(flags["voted"])) if flags["voted"] else 0.0,
        }
    total = sum(len(f["single"]) for f in results.values())
    summary["all"] = {
        "n": float(total),
        "single": sum(sum(f["single"]) for f in results.values()) / max(total, 1),
        "voted": sum(sum(f["voted"]) for f in results.values()) / max(total, 1),
    }
    return summary


def torch_runner(model: torch.nn.Module) -> object:
    """Evaluation callable over a torch model."""

    def run(batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    return run


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first tenth, then cosine decay to 5% of the peak."""
    warmup = max(1, min(150, total // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(args: argparse.Namespace) -> dict[str, object]:
    """Run the whole pipeline and return the metrics written to ``metrics.json``."""
    started = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    rng = random.Random(args.seed)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)

    samples = load_samples(args.data)
    train_samples, validation_samples = split_samples(samples, args.seed)
    (output / "split.json").write_text(
        json.dumps(
            {
                "train": [s.image.name for s in train_samples],
                "validation": [s.image.name for s in validation_samples],
            },
            indent=1,
        )
    )
    print(f"real plates: {len(train_samples)} train, {len(validation_samples)} validation")

    synthetic_file = output / f"synthetic_{args.synthetic}_{args.seed}.npz"
    if synthetic_file.exists():
        cached = np.load(synthetic_file)
        synthetic_images, synthetic_labels = cached["images"], list(cached["labels"])
    else:
        t0 = time.monotonic()
        synthetic_images, synthetic_labels = generate(args.synthetic, args.seed + 1)
        np.savez(synthetic_file, images=synthetic_images, labels=np.array(synthetic_labels))
        print(f"synthetic plates: {args.synthetic} in {time.monotonic() - t0:.0f} s")
    generation_s = time.monotonic() - started

    model = make_trainable(base_torch_model(base_model_path()))
    detector_boxes = None
    if args.detector_boxes is not None:
        detector_boxes = {
            name: (box[0], box[1], box[2], box[3])
            for name, box in json.loads(args.detector_boxes.read_text()).items()
        }
        print(f"detector boxes for {len(detector_boxes)} images")
    real = RealCrops(train_samples, detector_boxes)
    validation_crops = RealCrops(validation_samples)
    baseline = evaluate(torch_runner(model), validation_samples, validation_crops)
    print("validation before fine-tuning:", json.dumps(baseline))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    half = args.batch // 2
    best_score, best_step, best_metrics = -1.0, -1, baseline
    history: list[dict[str, object]] = []
    train_started = time.monotonic()
    running = 0.0
    for step in range(args.steps):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        images: list[npt.NDArray[np.float32]] = []
        labels: list[str] = []
        for _ in range(half):
            index = rng.randrange(len(train_samples))
            images.append(to_input(real.augmented(index, rng)))
            labels.append(train_samples[index].text)
        for _ in range(args.batch - half):
            index = rng.randrange(len(synthetic_labels))
            images.append(to_input(synthetic_images[index]))
            labels.append(str(synthetic_labels[index]))
        batch = torch.from_numpy(np.stack(images))
        targets = [encode(label) for label in labels]
        logits = model(batch)
        log_probs = logits.log_softmax(2).permute(1, 0, 2)
        loss = ctc(
            log_probs,
            torch.tensor([i for t in targets for i in t], dtype=torch.long),
            torch.full((len(targets),), log_probs.shape[0], dtype=torch.long),
            torch.tensor([len(t) for t in targets], dtype=torch.long),
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running = 0.98 * running + 0.02 * float(loss) if step else float(loss)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            metrics = evaluate(torch_runner(model), validation_samples, validation_crops)
            score = metrics["all"]["voted"] + metrics["all"]["single"]
            elapsed = time.monotonic() - train_started
            history.append({"step": step + 1, "loss": running, "seconds": elapsed, **metrics})
            print(
                f"step {step + 1} loss {running:.3f} {elapsed:.0f}s validation "
                f"single {metrics['all']['single']:.3f} voted {metrics['all']['voted']:.3f}",
                flush=True,
            )
            # Later checkpoints win ties: they have seen more data.
            if score >= best_score:
                best_score, best_step, best_metrics = score, step + 1, metrics
                torch.save(model.state_dict(), output / "best.pt")
    training_s = time.monotonic() - train_started

    model.load_state_dict(torch.load(output / "best.pt"))
    model.eval()
    onnx_path = output / "model.onnx"
    export(model, onnx_path)
    agreement, onnx_metrics = check_export(model, onnx_path, validation_samples, validation_crops)
    committed_metrics = None
    if MODEL_TARGET.exists():
        # The model in the repository, on the same split: a re-run should land within a point.
        committed_metrics = evaluate(
            onnx_runner(MODEL_TARGET), validation_samples, validation_crops
        )
        print("committed model on this validation split:", json.dumps(committed_metrics))
    result: dict[str, object] = {
        "seed": args.seed,
        "steps": args.steps,
        "batch": args.batch,
        "synthetic_plates": args.synthetic,
        "detector_boxes": str(args.detector_boxes) if args.detector_boxes else None,
        "train_plates": len(train_samples),
        "validation_plates": len(validation_samples),
        "best_step": best_step,
        "validation_before": baseline,
        "validation_best_torch": best_metrics,
        "validation_onnx": onnx_metrics,
        "validation_committed_model": committed_metrics,
        "onnx_torch_max_abs_diff": agreement,
        "generation_seconds": round(generation_s, 1),
        "training_seconds": round(training_s, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "history": history,
    }
    (output / "metrics.json").write_text(json.dumps(result, indent=1))
    if args.install:
        MODEL_TARGET.parent.mkdir(parents=True, exist_ok=True)
        MODEL_TARGET.write_bytes(onnx_path.read_bytes())
        print(f"installed {MODEL_TARGET}")
    return result


def export(model: torch.nn.Module, path: Path) -> None:
    """Write the model as ONNX: input ``x`` [N, 3, 48, 160], output ``logits`` [N, 20, 37]."""
    sample = torch.zeros(1, 3, 48, 160)
    torch.onnx.export(
        model,
        (sample,),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    add_metadata(path)


def add_metadata(path: Path) -> None:
    """Record the characters (output index i + 1) and the base model in the ONNX file.

    The dictionary is stored under ``character``, where PP-OCR models keep theirs, so
    tools that read a PP-OCR dictionary read this model's too.
    """
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in (
        ("character", "\n".join(PLATE_CHARACTERS)),
        ("base_model", "PP-OCRv4 ch_PP-OCRv4_rec_infer.onnx (rapidocr_onnxruntime), Apache-2.0"),
        ("input", "x: [N, 3, 48, 160] BGR plate crop scaled to [-1, 1]"),
        ("output", "logits: [N, 20, 37] CTC logits, index 0 blank"),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def onnx_runner(path: Path) -> object:
    """Evaluation callable over an ONNX file run by onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(session.run(None, {"x": batch})[0])

    return run


def check_export(
    model: torch.nn.Module, path: Path, samples: list[PlateSample], crops: RealCrops
) -> tuple[float, dict[str, dict[str, float]]]:
    """Largest onnxruntime-vs-torch logit difference on validation crops, and ONNX metrics."""
    run = onnx_runner(path)
    batch = np.stack([to_input(crop_box(crops.image(s), s.box, (0.15,) * 4)) for s in samples[:16]])
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    difference = float(np.abs(run(batch) - expected).max())  # type: ignore[operator]
    if difference > 1e-3:
        raise RuntimeError(f"onnxruntime and torch disagree by {difference}")
    return difference, evaluate(run, samples, crops)


def main() -> None:
    """Parse arguments and train."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--synthetic", type=int, default=8000)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--detector-boxes",
        type=Path,
        default=None,
        help="detector_boxes.py output: cut half the real crops from the detector's boxes",
    )
    parser.add_argument(
        "--install", action="store_true", help="copy the exported model into the model repository"
    )
    result = train(parser.parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "history"}))


if __name__ == "__main__":
    main()
