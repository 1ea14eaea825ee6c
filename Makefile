# The README's two commands. Both bootstrap everything on a machine that has only
# Python 3.11, git and make: uv (installed with pip into .tools/ when absent), the .venv
# and every package from uv.lock. uv uses this machine's Python; it never downloads one.

SHELL := /bin/bash
# The interpreter's real path (not a pyenv shim), so every uv call agrees on one venv.
PYTHON ?= $(shell $$(command -v python3.11 || command -v python3) -c 'import sys; print(sys.executable)')
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
ifeq ($(UV_ON_PATH),)
UV := .tools/bin/uv
UV_DEP := .tools/bin/uv
else
UV := $(UV_ON_PATH)
UV_DEP :=
endif
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

MYPY_PATHS := lprctl common/src policy/src gateway/src recognition-svc/src hotlist-svc/src audit-svc/src bench

.PHONY: demo up test lint typecheck pytest sync models clean-data

demo: sync  ## Start the platform on embedded defaults and run the demo.
	$(UV) run --frozen lprctl up --demo --exit-after-demo

up: sync  ## Start the platform and keep it running until Ctrl-C.
	$(UV) run --frozen lprctl up

test: sync lint typecheck pytest  ## ruff, mypy and pytest over the whole workspace.

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: sync
	$(UV) run --frozen mypy $(MYPY_PATHS)

pytest: sync
	$(UV) run --frozen pytest

sync: $(UV_DEP)
	$(UV) sync --frozen --python "$(PYTHON)"

.tools/bin/uv:
	"$(PYTHON)" -m venv .tools
	.tools/bin/pip install --quiet uv

models: sync  ## Assemble recognition-svc/model_repository from the installed model wheels.
	$(UV) run --frozen lprctl models

clean-data:  ## Delete the embedded data directory (database, blobs, keys).
	rm -rf .lpr

# Fine-tune the plate recognizer (recognition-svc/training/MODEL_CARD.md). torch lives in
# its own venv, never in uv.lock or the services' images. The result lands in
# build/train-ocr/ next to the committed model's figures; INSTALL=1 also copies it into
# recognition-svc/model_repository/plate_rec/.
TRAIN_VENV := .venv-train
TRAIN_SEED ?= 20261129
TRAIN_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

.PHONY: train-ocr
train-ocr: sync  ## Fine-tune the plate recognizer with a fixed seed (about 30 min on 2 cores).
	test -f $(TRAIN_FONT) || (apt-get update && apt-get install -y fonts-dejavu-core fonts-liberation)
	test -x $(TRAIN_VENV)/bin/python || "$(PYTHON)" -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet torch==2.13.0 onnx onnxruntime numpy opencv-python-headless pillow onnx2torch
	nice -n 19 $(TRAIN_VENV)/bin/python -W ignore recognition-svc/training/train_ocr.py --seed $(TRAIN_SEED) $(if $(INSTALL),--install,)
	nice -n 19 $(UV) run --frozen python recognition-svc/training/measure_rules.py --model $(if $(INSTALL),recognition-svc/model_repository/plate_rec/1/model.onnx,build/train-ocr/model.onnx)
