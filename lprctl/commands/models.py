"""``lprctl models``: assemble the Triton model repository from the installed model wheels."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def cmd_models(args: argparse.Namespace) -> int:
    """Copy the ONNX models into the repository (and write the served detector graphs: FP16, FP32, INT8)."""
    from lpr_recognition.triton.repository import (
        MODEL_REPOSITORY,
        MODEL_SOURCES,
        ModelRepositoryError,
        assemble_model_repository,
    )

    dest = Path(args.dest) if args.dest else MODEL_REPOSITORY
    started = time.monotonic()
    try:
        assemble_model_repository(dest)
    except (ModelRepositoryError, OSError) as error:
        print(f"lprctl models: {error}", file=sys.stderr)
        return 2
    for source in MODEL_SOURCES:
        files = sorted((dest / source.model / "1").glob("*.onnx"))
        sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:.1f} MB" for f in files)
        print(f"  {source.model:<10} {sizes}   (from {source.package})")
    print(f"model repository ready at {dest} ({time.monotonic() - started:.1f} s)")
    return 0


def register(commands: Any) -> None:
    """Add ``lprctl models``."""
    models = commands.add_parser(
        "models", help="assemble the Triton model repository from the installed model wheels"
    )
    models.add_argument(
        "--dest", help="repository to fill (default recognition-svc/model_repository)"
    )
    models.set_defaults(handler=cmd_models)
