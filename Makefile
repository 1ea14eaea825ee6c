# The README's two commands. Both bootstrap everything on a machine that has only
# Python 3.11, git and make: uv (installed with pip into .tools/ when absent), the .venv
# and every package from uv.lock. uv uses this machine's Python; it never downloads one.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
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

clean-data:  ## Delete the embedded data directory (database, blobs, keys).
	rm -rf .lpr
