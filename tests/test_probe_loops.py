"""The truncation loop classifier on synthetic traces built for each class, and on negatives."""

from __future__ import annotations

import random

import pytest

from reasonscape.probe.loops import CLASSES, NO_LOOP, SEVERE_COVERAGE, classify, segments

PREAMBLE = "Let me look at the table carefully before I answer. The question asks for a count of rows. "
PROSE = ["The table lists several products from different cities.", "Each row has a price, a city and a quantity.",
         "I will filter for the rows where the city is Paris.", "Two rows match that condition in the table.",
         "Their prices are twelve and seven, so both stay in.", "Next I consider the quantity column on its own.",
         "Only one item has a quantity above five units.", "That means the filtered count is exactly one row.",
         "I should double check the header names against the question.", "The header says price, not cost."]


def static_loop(reps: int = 40) -> str:
    return PREAMBLE + "Wait, I need to recheck the first row of the table again. " * reps + "Wait, I need to re"


def growing_loop(reps: int = 30) -> str:
    return PREAMBLE + " ".join(f"So the running total is {' + '.join(['1'] * k)} = {k}." for k in range(2, reps))


def shrinking_loop(reps: int = 30) -> str:
    return PREAMBLE + " ".join("Remaining items: " + ", ".join(["pear"] * k) + "." for k in range(reps + 10, 10, -1))


def two_loop(reps: int = 25) -> str:
    return PREAMBLE + ("Let me check the sum of the price column again. "
                       "Now I add the values of that column together one by one. ") * reps


def three_loop(reps: int = 20) -> str:
    return PREAMBLE + ("First I read the header row of the table. Then I look at every price value in turn. "
                       "Finally I compare each one with the threshold given. ") * reps


def degenerate(reps: int = 300) -> str:
    return PREAMBLE + "the " * reps


CASES = {"1-LOOP-STATIC": static_loop, "1-LOOP-GROWING": growing_loop, "1-LOOP-SHRINKING": shrinking_loop,
         "2-LOOP-STATIC": two_loop, "3-LOOP-STATIC": three_loop, "DEGENERATE": degenerate}


def test_every_class_has_a_synthetic_trace():
    assert set(CASES) == set(CLASSES)


@pytest.mark.parametrize("cls", CLASSES)
def test_each_class_is_recognised_with_high_coverage(cls):
    loop = classify(CASES[cls]())
    assert loop.cls == cls
    assert loop.coverage > SEVERE_COVERAGE and loop.severe
    assert loop.repeats >= 3 and loop.unit.strip()


def test_periods_and_trends_are_reported():
    assert classify(two_loop()).period == 2 and classify(three_loop()).period == 3
    assert classify(growing_loop()).delta_tokens > 0 > classify(shrinking_loop()).delta_tokens
    assert classify(static_loop()).delta_tokens == pytest.approx(0, abs=0.01)
    assert classify("Hmm" + "!" * 400).cls == "DEGENERATE"


def test_a_loop_after_a_long_preamble_is_found_but_not_severe():
    text = " ".join(PROSE * 3) + " " + "Wait, I need to recheck the first row of the table again. " * 12
    loop = classify(text)
    assert loop.cls == "1-LOOP-STATIC" and 0.3 < loop.coverage < SEVERE_COVERAGE and not loop.severe
    assert text[loop.start:].startswith("Wait, I need")


@pytest.mark.parametrize("text", [
    "", "   ", "42", " ".join(PROSE),                                     # plain reasoning
    " ".join(f"Step {i}: move the {c} block onto the {p} pile." for i, (c, p) in
             enumerate(zip("red blue green yellow black white".split(), "left right middle top base far".split(),
                           strict=True))),                                # distinct steps
    " ".join(PROSE) + " I will check that. I will check that.",          # a repeat twice is not a loop
    " ".join(PROSE[:5]) + " That looks right. That looks right. That looks right. " + " ".join(PROSE[5:] * 4),
    "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z",
])
def test_negatives_are_not_loops(text):
    assert classify(text).cls == NO_LOOP


def test_random_sentences_from_a_small_vocabulary_are_not_loops():
    """Simulated reasoning draws sentences at random: chance repeats must not read as loops."""
    sentences = ["Checking the previous step again.", "Let me verify against the original statement.",
                 "So the remaining work is straightforward.", "Wait, let me double-check that part.",
                 "That looks consistent so far.", "I should be careful about the order of operations."]
    rngs = [random.Random(seed) for seed in range(20)]
    calls = [classify(" ".join(rng.choice(sentences) for _ in range(400))).cls for rng in rngs]
    assert calls.count(NO_LOOP) >= 19


def test_hostile_inputs_do_not_crash():
    assert classify(None).cls == NO_LOOP  # type: ignore[arg-type]
    assert classify("\x00" * 100).cls == "DEGENERATE"
    assert classify("\ud800 surrogate " * 50).cls != "error"
    big = static_loop(20_000)  # ~1.2 MB
    assert classify(big).cls == "1-LOOP-STATIC"


def test_segments_split_on_sentences_and_lines():
    text = "One. Two!\nThree?  Four"
    assert [text[a:b] for a, b in segments(text)] == ["One.", "Two!", "Three?", "Four"]
