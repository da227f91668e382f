"""Answer extraction shared by every task: reasoning is ignored, explicit answers win."""

import pytest

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


# -- issue 19: extraction fixes (each also has items in tests/golden/) ------------------------------

BRACKETS, SORT, BOOLEAN = get_task("brackets"), get_task("sort"), get_task("boolean")


def test_boxed_answers_may_contain_closing_braces():
    for text, ref in (("\\boxed{) ] }}", ")]}"), ("The answer is $\\boxed{]])}}$.", "]])}"),
                      ("\\boxed{} > } )}", "}>})"), ("\\boxed{\\}\\}}", "}}"), ("\\boxed{)}}}", ")}}")):
        assert scoring.grade(BRACKETS, text, ref) == ("correct", ref), text
    assert grade("\\boxed{42}}") == ("correct", "42")  # a stray brace after a number is not part of it
    assert scoring.grade(BOOLEAN, "\\[\\boxed{\\text{TRUE}}\\]", "TRUE").status == "correct"
    assert scoring.grade(BRACKETS, "\\boxed{) ]", ")]").status == "invalid"  # never closed


def test_an_answer_line_keeps_the_rest_of_a_multiline_answer():
    ref = "apple\nbanana\ncherry"
    for text in ("Answer: apple\nbanana\ncherry", "Final answer:\n\napple\nbanana\ncherry\n\nThese are sorted.",
                 "The final answer is:\n- apple\n- banana\n- cherry",
                 "Here is the sorted list:\n1. apple\n2. banana\n3. cherry\n\nNote: apple comes first."):
        assert scoring.grade(SORT, text, ref) == ("correct", ref), text
    # the answer line of a single-line task still ends at its line
    assert grade("Answer: 42\nbecause 40 + 2 = 42, not 41") == ("correct", "42")


def test_a_stated_value_in_code_formatting_is_read():
    for text in ("The value of the expression is: ```TRUE```", "The value of the expression is: `TRUE`",
                 "The value of the expression is:\n\n```\nTRUE\n```\n\nEach operator was applied in order.",
                 "The expression evaluates to TRUE.\n\nThis is because both sides hold."):
        assert scoring.grade(BOOLEAN, text, "TRUE") == ("correct", "TRUE"), text
    assert scoring.grade(BOOLEAN, "The value of the expression is:\n\n```\nTRUE\nFALSE\n```", "TRUE").status \
        == "invalid"


def test_the_last_stated_answer_wins_and_answers_before_remarks_count():
    assert grade("The answer is 41.\n\nWait, I made a mistake. The correct answer is 42.").extracted == "42"
    assert grade("The answer is 42.\n\nExplanation: an easy slip would give 41 instead.").extracted == "42"
    assert grade("Answer: 42 (after all the steps)").extracted == "42"
    assert grade("The expression evaluates to 42, which is the product of 6 and 7.").extracted == "42"
    assert grade("The answer is not obvious.\n\n6 * 7 = 42\n\n**42**").extracted == "42"
    assert grade("Answering this takes care: 41 is tempting.\n42").extracted == "42"
    for text in ("Answer: 42 (or maybe 41)", "The answer is 42 or 41.", "It is either 42 or 41."):
        assert grade(text).status == "invalid", text


def test_truncated_completions_count_only_answers_stated_in_whole_clauses():
    working = "First, 3 + 4 = 7\nThen 7 * 6 = 42"
    assert scoring.grade(ARITH, working, "42") == ("correct", "42")  # finished: the last line is the result
    assert scoring.grade(ARITH, working, "42", truncated=True).status == "invalid"  # cut: it is a step
    assert scoring.grade(ARITH, "The answer is 42.\n\nThe answer is 42.\n\nThe answer is ", "42",
                         truncated=True) == ("correct", "42")
    assert scoring.grade(ARITH, "Let me see.\nThe answer is 4", "42", truncated=True).status == "invalid"
    assert scoring.grade(ARITH, "<answer>4", "42", truncated=True).status == "invalid"  # "<answer>42" cut
    cut = "The value of the expression is TRUE and FALSE.\n\nThe value of the expression is TRUE"
    assert scoring.grade(BOOLEAN, cut, "TRUE", truncated=True).status == "invalid"
    assert scoring.grade(BOOLEAN, "<think>the answer is TRUE", "TRUE", truncated=True).status == "invalid"


def test_counts_stated_in_sentences():
    objects, tables, letters = get_task("objects"), get_task("tables"), get_task("letters")
    assert scoring.grade(objects, "You have 10 vehicles in total.", "10").status == "correct"
    assert scoring.grade(objects, "<answer>10 vehicles</answer>", "10").status == "correct"
    assert scoring.grade(letters, "The letter 'n' appears 4 times.", "4").status == "correct"
    assert scoring.grade(tables, "So, there are 5 rows where age is at most 53.", "5").status == "correct"
    for text in ("I count 10 vehicles, or maybe 11.", "There are 10 rows, or possibly 11.",
                 "I have 3 apples and 2 pears."):
        assert scoring.grade(objects, text, "10").status == "invalid", text


def test_a_listed_option_is_not_a_choice_and_a_contradiction_is_not_an_answer():
    movies = get_task("movies")
    meta = {"options": ["Alien (1979)", "Heat (1995)", "Up (2009)"]}
    listing = "A) Alien (1979): sci-fi\nB) Heat (1995): crime\nC) Up (2009): family"
    assert scoring.grade(movies, listing, "C", meta).status == "invalid"
    assert scoring.grade(movies, "(C) Up (2009)\n\nThe answer is:\n(B) Up (2009)", "C", meta).status == "invalid"
    assert scoring.grade(movies, "The answer is: C) Up (2009)", "C", meta) == ("correct", "C")


def test_sentences_are_not_item_names_or_word_lists():
    shuffle = get_task("shuffle")
    meta = {"items": ["red ball", "golf ball", "baseball"]}
    assert scoring.grade(shuffle, "Hannah and Oscar swap balls.", "golf ball", meta).status == "invalid"
    assert scoring.grade(shuffle, "The answer is: Nadia has a golf ball.", "golf ball", meta).status == "correct"
    assert scoring.grade(shuffle, "The answer is: Fred.", "golf ball", meta) == ("incorrect", "fred")
    refusal = "I'm sorry, but I can't determine that from the information given."
    assert scoring.grade(SORT, refusal, "apple\nbanana").status == "invalid"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", [
    "<think>" * 20000, "-" * 50000 + "x", ("-" * 40 + " x\n") * 2000, "$" * 50000, "x (" + "a " * 50000 + ")",
    "\\boxed{" * 20000, "\\boxed{" + ")" * 50000 + "}" * 50000, "Answer: " * 20000, "Answer:\n" * 20000,
    "```\n" * 20000, "<answer>" * 20000, "There are " + "1 " * 20000 + "rows", "**" * 25000 + "5",
    "\\text{" * 5000 + "5" + "}" * 5000, "\x00\ufffd" * 10000, "", "The date is " * 20000 + "March 3, 2024",
    "There are 5 rows where " + "x is " * 20000, "a, " * 30000 + "b",
], ids=lambda t: repr(t[:12]))
def test_hostile_completions_are_graded_without_blowing_up(text):
    """Pathological text (huge, nested, unbalanced) gets a grade from every task in bounded time."""
    from reasonscape.tasks.registry import task_names
    for name in task_names():
        g = scoring.grade(get_task(name), text, "5", {}, truncated=False)
        assert g.status in ("correct", "incorrect", "invalid")
        assert scoring.grade(get_task(name), text, "5", {}, truncated=True).status in ("correct", "incorrect",
                                                                                     "invalid")


def test_cars_positions_named_by_the_end_of_the_line():
    cars = get_task("cars")
    assert scoring.grade(cars, "The car that Henry is riding in is the front of the line.", "1", {}) \
        == ("correct", "1")
    assert scoring.grade(cars, "The pink car moves to the front of the line.", "1", {}).status == "invalid"
    # "the last one" is position num_cars: readable only when the test's meta says how many cars there are
    assert scoring.grade(cars, "It is the last one.", "3", {"num_cars": 3}) == ("correct", "3")
    assert scoring.grade(cars, "It is the last one.", "3", {}).status == "invalid"
    assert scoring.grade(cars, "<answer>0</answer>", "3", {}).status == "invalid"
