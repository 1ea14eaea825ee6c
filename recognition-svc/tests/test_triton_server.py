"""The real CPU Triton server from the nvidia-pytriton wheel, reading real plates."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lpr_recognition.inference.errors import InvalidImage, RecognitionUnavailable
from lpr_recognition.inference.plate_text import normalize_plate
from lpr_recognition.inference.triton_client import TritonRecognizer
from lpr_recognition.triton.repository import MODEL_REPOSITORY, assemble_model_repository
from lpr_recognition.triton.server import TritonPorts, TritonServer, TritonServerError

PLATES_DIR = Path(
    os.environ.get(
        "LPR_PLATES_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"
    )
)
# Ports away from the defaults, so a running stack is not disturbed.
PORTS = TritonPorts(http=18100, grpc=18101, metrics=18102)
# (set, image) pairs whose plates the models read; named here, their text comes from the
# data. The BR image is a square 1280 x 1280 frame, which the detector sees at 480 x 480.
IMAGES = (
    ("us", "37170dd1-2802-4e38-b982-c5d07c64ff67"),
    ("us", "4be2025c-09f7-4bb0-b1bd-8e8633e6dec1"),
    ("br", "JSC7486"),
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    pytest.importorskip("pytriton")
    if not (PLATES_DIR / "us").is_dir():
        pytest.skip(f"no plate images at {PLATES_DIR}")
    assemble_model_repository(MODEL_REPOSITORY)
    with TritonServer(MODEL_REPOSITORY, tmp_path_factory.mktemp("triton"), ports=PORTS) as running:
        yield running


@pytest.fixture
async def recognizer(server: TritonServer) -> AsyncIterator[TritonRecognizer]:
    async with TritonRecognizer(server.grpc_url, timeout_s=30.0, max_concurrency=2) as client:
        await client.wait_ready(30)
        yield client


@pytest.mark.parametrize(("region", "name"), IMAGES)
async def test_reads_the_plate_of_a_real_image(
    recognizer: TritonRecognizer, region: str, name: str
) -> None:
    fields = (PLATES_DIR / region / f"{name}.txt").read_text().strip().split("\t")
    x, y, w, h = (int(v) for v in fields[1:5])
    image = (PLATES_DIR / region / fields[0]).read_bytes()
    plates = await recognizer.recognize(image, region=region)
    assert plates, "no plate found"
    best = plates[0]
    assert best.text == normalize_plate(fields[5])
    assert 0 < best.confidence <= 1
    assert best.candidates[0] == (best.text, best.confidence)
    bx, by, bw, bh = best.box
    assert abs((bx + bw / 2) - (x + w / 2)) < w / 2
    assert abs((by + bh / 2) - (y + h / 2)) < h / 2


async def test_corrupt_image_is_invalid(recognizer: TritonRecognizer) -> None:
    with pytest.raises(InvalidImage):
        await recognizer.recognize(b"\xff\xd8\xff\xe0 truncated jpeg")


async def test_no_server_is_unavailable() -> None:
    async with TritonRecognizer("localhost:18199", timeout_s=2.0) as client:
        assert not await client.is_ready()
        image = (PLATES_DIR / "us" / f"{IMAGES[0][1]}.jpg").read_bytes()
        with pytest.raises(RecognitionUnavailable):
            await client.recognize(image)


def test_missing_onnx_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "platedet" / "configs").mkdir(parents=True)
    with pytest.raises(TritonServerError, match="platedet"):
        TritonServer(tmp_path, tmp_path / "work", ports=PORTS).start()
