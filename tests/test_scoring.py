"""Answer extraction shared by every task: reasoning is ignored, explicit answers win."""

from reasonscape import scoring
from reasonscape.tasks.registry import get_task

ARITH = get_task("arithmetic")


def grade(text, ref="42"):
    return scoring.grade(ARITH, text, ref)


def test_answer_tag_is_preferred_over_other_numbers():
    assert grade("3 + 39 = 42, not 41.\n<answer>42</answer>") == ("correct", "42")
    assert grade("<answer>41</answer>") == ("incorrect", "41")


def test_usual_answer_formats_are_accepted():
    for text in ("\\boxed{42}", "The final answer is: 42", "**Answer:** 42", "Answer = 42.",
                 "so the result is\n42", "<answer> 42 </answer>", "```\n42\n```", "<answer>\\boxed{42}</answer>"):
        assert grade(text).status == "correct", text


def test_reasoning_blocks_are_not_answers():
    assert grade("<think>maybe 42</think>\n<answer>40</answer>").status == "incorrect"
    assert grade("<think>the answer is 42 ... still thinking").status == "invalid"  # never finished
    assert grade("prefilled reasoning 42</think>The answer is 41").extracted == "41"


def test_malformed_and_hedged_answers_are_invalid():
    for text in ("", "   ", "<answer></answer>", "<answer>42 or 43</answer>", "I don't know",
                 "<answer>forty-two</answer>"):
        assert grade(text).status == "invalid", text


def test_unclosed_answer_tag_still_counts():
    assert grade("<answer>42").status == "correct"


def test_multiline_answers_take_the_whole_last_block():
    sort = get_task("sort")
    assert scoring.grade(sort, "Sorted:\n\napple\nbanana\ncherry", "apple\nbanana\ncherry").status == "correct"


def test_bold_answer_lines_parse():
    assert grade("Answer: **42**").status == "correct"
    assert grade("**Answer:** 42").status == "correct"


def test_option_titles_map_to_letters_with_the_tests_meta():
    movies = get_task("movies")
    from reasonscape.tasks.base import generate_tests

    t = generate_tests(movies, movies.Params().model_dump(), 3, 1)[0]
    title = t.meta["options"][ord(t.reference) - ord("A")]
    assert scoring.grade(movies, f"<answer>{title}</answer>", t.reference, t.meta).status == "correct"
    assert scoring.grade(movies, f"<answer>{title}</answer>", t.reference).status == "invalid"
