"""The vote of multi-frame fusion: weights decide, lengths first, order never matters."""

from __future__ import annotations

import itertools

import pytest

from lpr_recognition.fusion.vote import Frame, distance, edit_distance, fuse


def test_a_single_frame_is_fused_into_itself() -> None:
    frame = Frame("6HP995", (0.9, 0.8, 0.7, 0.95, 0.6, 0.85))
    fused = fuse([frame])
    assert (fused.text, fused.confidences, fused.voters) == ("6HP995", frame.confidences, 1)
    assert fused.confidence == pytest.approx(frame.weight)


def test_confidence_outweighs_the_number_of_frames_per_character() -> None:
    # Two frames are unsure of an 8 they read as B; one frame is sure it is an 8.
    unsure = (0.9, 0.9, 0.9, 0.3, 0.9, 0.9)
    frames = [
        Frame("7ABB12", unsure),
        Frame("7ABB12", unsure),
        Frame("7AB812", (0.9, 0.9, 0.9, 0.95, 0.9, 0.9)),
    ]
    fused = fuse(frames)
    assert fused.text == "7AB812"
    # The 8's confidence is its weight over all three voters (the others saw a B).
    assert fused.confidences[3] == pytest.approx(0.95 / 3)
    assert fused.confidences[0] == pytest.approx(0.9)


def test_the_majority_wins_when_it_is_as_sure() -> None:
    frames = [Frame.of("ABC123", 0.9), Frame.of("ABC123", 0.8), Frame.of("A8C123", 0.85)]
    assert fuse(frames).text == "ABC123"


def test_unequal_lengths_vote_on_the_length_first_weighted() -> None:
    # Two frames dropped a character, weakly; two read all seven, surely.
    frames = [
        Frame.of("ABC123", 0.4),
        Frame.of("ABC124", 0.4),
        Frame.of("ABC1234", 0.9),
        Frame.of("ABC1284", 0.7),
    ]
    fused = fuse(frames)
    assert len(fused.text) == 7
    assert fused.voters == 2  # only frames of the winning length vote on the characters
    assert fused.text == "ABC1234"


def test_a_heavier_short_reading_wins_the_length_vote() -> None:
    frames = [Frame.of("ABC123", 0.95), Frame.of("ABC123", 0.9), Frame.of("ABC1234", 0.6)]
    assert fuse(frames).text == "ABC123"


def test_the_result_never_depends_on_the_order_of_the_frames() -> None:
    frames = [
        Frame("XYZ789", (0.5, 0.9, 0.9, 0.9, 0.9, 0.9)),
        Frame("KYZ789", (0.5, 0.9, 0.9, 0.9, 0.9, 0.9)),  # tie on the first character
        Frame("XYZ78", (0.99,) * 5),
        Frame("XY2789", (0.9, 0.9, 0.5, 0.9, 0.9, 0.9)),
    ]
    results = {fuse(list(order)) for order in itertools.permutations(frames)}
    assert len(results) == 1


def test_edge_ocr_confidence_stands_for_every_character() -> None:
    frame = Frame.of("ABC123", 0.8)
    assert frame.confidences == (0.8,) * 6
    # Per-character confidences of another text (a different length) are not used.
    assert Frame.of("ABC123", 0.7, (0.9, 0.9)).confidences == (0.7,) * 6
    with pytest.raises(ValueError, match="confidences"):
        Frame("ABC", (0.9,))
    with pytest.raises(ValueError, match="nothing to fuse"):
        fuse([])


def test_closeness_counts_ocr_look_alikes_as_free_and_limits_edits() -> None:
    assert distance("6HP995", "GHP99S", max_edits=1) == 0  # 6≈G, 5≈S
    assert distance("ABC1234", "ABC124", max_edits=1) == 1  # a dropped character
    assert distance("ABC1234", "ABD1239", max_edits=1) is None  # two edits
    assert distance("ABC1234", "ABD1239", max_edits=2) == 2
    assert distance("AB1", "AB7", max_edits=1) is None  # too short for an edit
    assert distance("ABC1234", "XYZ9876", max_edits=2) is None
    assert edit_distance("KITTEN", "SITTING", 5) == 3
    assert edit_distance("KITTEN", "SITTING", 1) == 2  # stops past the limit
