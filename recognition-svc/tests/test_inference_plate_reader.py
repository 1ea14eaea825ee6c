"""Reading whole plate crops with the fine-tuned recognizer: views, decoding, voting, rules."""

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from lpr_recognition.inference.pipeline import (
    PLATE_DETECTOR,
    PLATE_RECOGNIZER,
    PLATE_RECOGNIZER_OUTPUT,
    PipelineSettings,
    PlatePipeline,
    pipeline_models,
)
from lpr_recognition.inference.plate_detector import DETECTOR_STRIDES, Detection
from lpr_recognition.inference.plate_reader import (
    FIRST_VIEWS,
    PLATE_READER_HEIGHT,
    PLATE_READER_WIDTH,
    decode_views,
    merge_candidates,
    plate_reader_input,
    plate_views,
    vote_reads,
)
from lpr_recognition.inference.plate_text import US_RULES, US_RULES_APPLIED, apply_region_rules
from lpr_recognition.inference.text_recognizer import DecodedText

CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALPHABET = {i + 1: char for i, char in enumerate(CHARACTERS)}


def _logits(
    text: str, steps: int = 20, runner_up: Mapping[int, str] | None = None
) -> npt.NDArray[np.float32]:
    """Logits spelling ``text`` with blanks between characters, confident."""
    logits = np.zeros((steps, len(CHARACTERS) + 1), dtype=np.float32)
    logits[:, 0] = 8.0
    for position, char in enumerate(text):
        step = 2 * position + 1
        logits[step, 0] = 0.0
        logits[step, CHARACTERS.index(char) + 1] = 8.0
        if runner_up and position in runner_up:
            logits[step, CHARACTERS.index(runner_up[position]) + 1] = 7.0
    return logits


def _read(text: str, p: float) -> DecodedText:
    return DecodedText(
        text=text, probabilities=(p,) * len(text), alternatives=(("", 0.0),) * len(text)
    )


def test_views_cut_the_box_at_each_padding_and_repeat_edges_beyond_the_image() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    inside = Detection(x1=50, y1=40, x2=150, y2=60, confidence=0.9)
    tight, padded = plate_views(image, inside, (0.0, 0.1))
    assert tight.shape == (20, 100, 3)
    assert np.array_equal(tight, image[40:60, 50:150])
    assert padded.shape == (24, 120, 3)
    corner = Detection(x1=0, y1=0, x2=40, y2=20, confidence=0.9)
    (view,) = plate_views(image, corner, (0.25,))
    # The margin beyond the top-left corner repeats the image's first pixel.
    assert view.shape == (30, 60, 3)
    assert np.array_equal(view[0, 0], image[0, 0])


def test_input_is_stretched_to_48_by_160_keeping_bgr_order_in_minus_one_to_one() -> None:
    blue = np.zeros((30, 90, 3), dtype=np.uint8)
    blue[:, :, 0] = 255
    batch = plate_reader_input([blue, np.full((10, 400, 3), 127, dtype=np.uint8)])
    assert batch.shape == (2, 3, PLATE_READER_HEIGHT, PLATE_READER_WIDTH)
    assert batch.dtype == np.float32
    assert np.allclose(batch[0, 0], 1.0)
    assert np.allclose(batch[0, 1:], -1.0)
    assert np.all(np.abs(batch[1]) < 0.01)


def test_logits_decode_to_plate_characters_with_confidences() -> None:
    reads = decode_views(np.stack([_logits("7ABC123"), _logits("")]), ALPHABET)
    assert reads[0].text == "7ABC123"
    assert len(reads[0].probabilities) == 7
    assert all(p > 0.9 for p in reads[0].probabilities)
    assert reads[1].text == ""


def test_vote_weighs_views_by_confidence_and_lowers_disputed_characters() -> None:
    reads = [_read("ABC123", 0.9), _read("ABC123", 0.8), _read("ABC128", 0.95), _read("", 0.0)]
    voted = vote_reads(reads)
    assert voted.read.text == "ABC123"
    assert voted.agreement == 0.5
    # Characters are scored over all four views: the last one only two views share.
    assert voted.read.probabilities == pytest.approx((2.65 / 4,) * 5 + (1.7 / 4,))
    assert [text for text, _ in voted.candidates] == ["ABC123", "ABC128"]
    # One confident view outweighs two doubtful ones.
    assert vote_reads([_read("XYZ1", 0.3), _read("XYZ1", 0.3), _read("XYZ7", 0.9)]).read.text == (
        "XYZ7"
    )


def test_vote_of_nothing_is_an_empty_read() -> None:
    assert vote_reads([]).read.text == ""
    assert vote_reads([_read("", 0.0)]).candidates == ()


def test_candidates_start_with_the_read_without_duplicates_up_to_the_limit() -> None:
    voted = vote_reads([_read("ABC123", 0.9), _read("ABC128", 0.5)])
    merged = merge_candidates(voted, [("ABC128", 0.7), ("A8C123", 0.6), ("ABC12", 0.1)], limit=3)
    assert [text for text, _ in merged] == ["ABC123", "ABC128", "A8C123"]


def test_every_applied_us_rule_is_a_known_rule() -> None:
    assert set(US_RULES_APPLIED) <= set(US_RULES)


def test_california_layout_reads_letters_and_digits_by_position() -> None:
    # "7A8C123": the third character sits where California has a letter; B was close.
    (read,) = decode_views(_logits("7A8C123", runner_up={2: "B"})[None], ALPHABET)
    assert US_RULES["california_layout"](read).text == "7ABC123"
    # Other layouts are left alone.
    (other,) = decode_views(_logits("AB8C12")[None], ALPHABET)
    assert US_RULES["california_layout"](other).text == "AB8C12"


def test_substitution_rules_only_touch_us_reads() -> None:
    read = _read("OQI123", 0.9)
    assert US_RULES["letter_q_as_digit_0"](read).text == "O0I123"
    assert US_RULES["letter_i_as_digit_1"](read).text == "OQ1123"
    assert apply_region_rules(read, "eu", us_rules=tuple(US_RULES)).text == "OQI123"


class _FakeRunner:
    """Answers the detector with one box and the plate recognizer with one text per view.

    The views' texts are handed out in the order the views are read.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    async def infer(
        self, model: str, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[np.generic]]:
        (tensor,) = inputs.values()
        self.calls.append((model, tuple(tensor.shape)))
        if model == PLATE_DETECTOR:
            _, height, width, _ = tensor.shape
            anchors = sum((height // s) * (width // s) for s in DETECTOR_STRIDES)
            # Flat box-side distributions (7.5 bins each side) and one confident anchor:
            # on the stride 8 grid, in the middle of the input.
            prediction = np.zeros((1, 65, anchors), dtype=np.float16)
            prediction[0, 64] = -10.0
            prediction[0, 64, (height // 16) * (width // 8) + width // 16] = 4.0
            return {outputs[0]: prediction, outputs[1]: np.arange(anchors)}
        texts, self.texts = self.texts[: tensor.shape[0]], self.texts[tensor.shape[0] :]
        return {PLATE_RECOGNIZER_OUTPUT: np.stack([_logits(text) for text in texts])}


async def test_pipeline_reads_two_views_and_stops_when_they_agree() -> None:
    runner = _FakeRunner(["7ABC123"] * 5)
    pipeline = PlatePipeline(runner, ALPHABET, PipelineSettings())
    # A 16:9 frame: the detector sees it at its own scale, padded to 640 x 384.
    image = np.full((360, 640, 3), 128, dtype=np.uint8)
    (plate,) = await pipeline.recognize_array(image, region="us")
    assert plate.text == "7ABC123"
    x, y, width, height = plate.box
    # The anchor at input (324, 196), less the 12 rows of padding above the image.
    assert (x + width / 2, y + height / 2) == pytest.approx((324, 184), abs=1)
    assert width == height == 120  # 2 x 7.5 bins of stride 8
    assert runner.calls == [
        (PLATE_DETECTOR, (1, 384, 640, 3)),
        (PLATE_RECOGNIZER, (FIRST_VIEWS, 3, 48, 160)),
    ]
    assert pipeline_models() == (PLATE_DETECTOR, PLATE_RECOGNIZER)


async def test_pipeline_reads_every_view_when_the_first_disagree_and_votes() -> None:
    runner = _FakeRunner(["7ABC123", "7ABC128", "7ABC123", "7ABC123", "7ABC123"])
    pipeline = PlatePipeline(runner, ALPHABET, PipelineSettings())
    (plate,) = await pipeline.recognize_array(np.full((640, 640, 3), 128, np.uint8), "us")
    views = len(PipelineSettings().vote_paddings)
    # A square frame goes to the detector within the pixel budget: 480 x 480.
    assert runner.calls[0] == (PLATE_DETECTOR, (1, 480, 480, 3))
    assert [shape[0] for _, shape in runner.calls[1:]] == [FIRST_VIEWS, views - FIRST_VIEWS]
    assert plate.text == "7ABC123"
    assert plate.character_confidences[-1] < plate.character_confidences[0]
    assert "7ABC128" in [text for text, _ in plate.candidates]
