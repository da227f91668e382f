"""Shapes task: an independent solver parses the SVG path and classifies the polygon geometrically."""

from __future__ import annotations

import math
import random
import re

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("shapes")
ANGLE_TOL = 6.0  # degrees; the generator keeps classes >= 10 degrees apart
LEN_TOL = 0.1  # relative; unequal sides that must be told apart differ by >= ~20%


def vertices(path: str) -> tuple[list[tuple[float, float]], bool]:
    """(absolute vertices, uses arcs) of a path made of M, L/l, A/a and Z commands."""
    tokens = re.findall(r"[MLlAaZz]|-?\d+(?:\.\d+)?", path)
    pts: list[tuple[float, float]] = []
    arcs = False
    i = 0
    x = y = 0.0
    while i < len(tokens):
        cmd = tokens[i]
        if cmd in "Zz":
            i += 1
        elif cmd in "Aa":
            arcs = True
            dx, dy = float(tokens[i + 6]), float(tokens[i + 7])
            x, y = (x + dx, y + dy) if cmd == "a" else (dx, dy)
            i += 8
        else:
            a, b = float(tokens[i + 1]), float(tokens[i + 2])
            x, y = (x + a, y + b) if cmd == "l" else (a, b)
            pts.append((x, y))
            i += 3
    return pts, arcs


def angle_at(p, q, r) -> float:
    """Interior angle at q in degrees."""
    a = math.atan2(p[1] - q[1], p[0] - q[0]) - math.atan2(r[1] - q[1], r[0] - q[0])
    a = abs(math.degrees(a)) % 360
    return 360 - a if a > 180 else a


def parallel(p1, p2, q1, q2) -> bool:
    a = math.degrees(math.atan2(p2[1] - p1[1], p2[0] - p1[0]) - math.atan2(q2[1] - q1[1], q2[0] - q1[0]))
    a %= 180
    return min(a, 180 - a) < ANGLE_TOL


def close(a: float, b: float) -> bool:
    return abs(a - b) <= LEN_TOL * max(a, b)


def classify(path: str) -> str:
    pts, arcs = vertices(path)
    if arcs:
        return "circle"
    n = len(pts)
    angles = [angle_at(pts[i - 1], pts[i], pts[(i + 1) % n]) for i in range(n)]
    sides = [math.dist(pts[i], pts[(i + 1) % n]) for i in range(n)]
    if n == 3:
        if any(abs(a - 90) < ANGLE_TOL for a in angles):
            return "right triangle"
        equal_pairs = sum(abs(angles[i] - angles[j]) < ANGLE_TOL for i, j in ((0, 1), (1, 2), (0, 2)))
        return {0: "scalene triangle", 1: "isosceles triangle"}.get(equal_pairs, "equilateral triangle")
    if n == 4:
        p = pts
        pairs = parallel(p[0], p[1], p[3], p[2]) + parallel(p[1], p[2], p[0], p[3])
        all_equal = all(close(s, sides[0]) for s in sides)
        right = all(abs(a - 90) < ANGLE_TOL for a in angles)
        if pairs == 2:
            if all_equal:
                return "square" if right else "rhombus"
            return "rectangle" if right else "parallelogram"
        if pairs == 1:
            return "trapezoid"
        kite = (close(sides[0], sides[1]) and close(sides[2], sides[3])) or (
            close(sides[1], sides[2]) and close(sides[3], sides[0]))
        assert kite, path
        return "kite"
    assert all(close(s, sides[0]) for s in sides) and max(angles) - min(angles) < 2 * ANGLE_TOL, path
    return {5: "pentagon", 6: "hexagon", 7: "heptagon", 8: "octagon"}[n]


POINTS = [
    {},
    {"shape_set": "quadrilaterals", "precision": 0, "min_scale": 50, "max_scale": 60, "max_rotation": 180,
     "path_style": "mixed"},
    {"shape_set": "triangles", "precision": 0, "min_scale": 50, "max_scale": 55, "path_style": "relative"},
    {"shape_set": "regular", "choice_count": 2, "max_rotation": 0, "precision": 2, "min_scale": 1,
     "max_scale": 6, "max_offset": 10},
    {"choice_count": 15, "precision": 3, "max_offset": 5000, "min_scale": 100, "max_scale": 2000,
     "path_style": "mixed"},
]


@pytest.mark.parametrize("point", POINTS)
def test_generated_shapes_match_geometric_classifier(point: dict) -> None:
    params = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=19, stop=50):
        path = t.question.splitlines()[1]
        assert classify(path) == t.reference, path
        options = t.question.rsplit("Options: ", 1)[1].rstrip(".").split(", ")
        assert len(options) == len(set(options)) == params.choice_count
        assert t.reference in options
        assert t.guess_chance == pytest.approx(1 / params.choice_count)
        assert TASK.parse_answer(t.reference) == t.reference


def test_every_shape_type_appears_and_classifies() -> None:
    seen = set()
    for t in generate_tests(TASK, {"precision": 0, "min_scale": 50, "max_rotation": 180}, 3, 600):
        assert classify(t.question.splitlines()[1]) == t.reference
        seen.add(t.reference)
    assert len(seen) == 15


def test_rotation_zero_keeps_a_square_axis_aligned() -> None:
    for t in generate_tests(TASK, {"shape_set": "regular", "max_rotation": 0, "max_offset": 0}, 1, 60):
        if t.reference == "square":
            pts, _ = vertices(t.question.splitlines()[1])
            assert all(abs(x) < 1e-6 or abs(y) < 1e-6 for x, y in pts)  # a diamond around the origin


def test_generation_is_deterministic() -> None:
    a = generate_tests(TASK, POINTS[1], global_seed=9, stop=15)
    b = generate_tests(TASK, POINTS[1], global_seed=9, stop=15)
    assert [(t.question, t.reference) for t in a] == [(t.question, t.reference) for t in b]


@pytest.mark.parametrize(("completion", "status"), [
    ("<answer>rhombus</answer>", "correct"),
    ("<answer>Rhombus</answer>", "correct"),
    ("<answer>A rhombus.</answer>", "correct"),
    ("It is a **rhombus**", "correct"),
    ("Answer: diamond", "correct"),
    ("\\boxed{\\text{rhombus}}", "correct"),
    ("<answer>kite</answer>", "incorrect"),
    ("<answer>quadrilateral</answer>", "incorrect"),
    ("<answer>rhombus or kite</answer>", "invalid"),
    ("<answer>rhombus, kite, square</answer>", "invalid"),
    ("<answer>not a rhombus</answer>", "invalid"),
    ("<answer>blob</answer>", "invalid"),
    ("<answer></answer>", "invalid"),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "rhombus").status == status


def test_aliases() -> None:
    assert TASK.parse_answer("right-angled triangle") == "right triangle"
    assert TASK.parse_answer("Trapezium") == "trapezoid"
    assert TASK.parse_answer("regular hexagon") == "hexagon"


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"shapes.*choice_count"):
        TASK.validate({"choice_count": 1})
    with pytest.raises(InputError, match=r"shapes.*shape_set"):
        TASK.validate({"shape_set": "stars"})
    with pytest.raises(InputError, match=r"shapes.*min_scale"):
        TASK.validate({"min_scale": 200, "max_scale": 100})
    with pytest.raises(InputError, match=r"shapes: min_scale = 10.0, precision = 0: .*joint constraint "
                                         r"'min_scale >= 50 / 10\*\*precision"):
        TASK.validate({"precision": 0, "min_scale": 10.0})
    # the documented floor of min_scale is reachable exactly at the finest precision
    assert TASK.validate({"precision": 4, "min_scale": 0.005, "max_scale": 0.005}).min_scale == 0.005
    with pytest.raises(InputError, match=r"shapes: min_scale = 0.001: .*allowed range 0.005\.\.10000"):
        TASK.validate({"precision": 4, "min_scale": 0.001, "max_scale": 1.0})
    with pytest.raises(InputError, match=r"shapes: min_scale = 0.04, precision = 3: .*joint constraint"):
        TASK.validate({"precision": 3, "min_scale": 0.04, "max_scale": 1.0})


def test_wrong_answer_is_another_option() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {}, global_seed=2, stop=40):
        w = TASK.wrong_answer(rng, t)
        assert w != t.reference and w in t.meta["options"] and TASK.parse_answer(w) == w


def test_difficulty_grows_with_confusability() -> None:
    d = [TASK.difficulty(TASK.validate(p)) for p in (
        {"shape_set": "regular", "choice_count": 2, "max_rotation": 0},
        {},
        {"shape_set": "quadrilaterals", "choice_count": 6, "max_rotation": 180, "path_style": "mixed"},
        {"shape_set": "all", "choice_count": 15, "max_rotation": 180, "path_style": "relative",
         "precision": 3, "min_scale": 100, "max_offset": 10000})]
    assert 0.1 < d[0] < d[1] < d[2] < d[3] < 3.0


@pytest.mark.parametrize("precision", [0, 1, 2, 3, 4])
def test_smallest_allowed_scale_still_classifies_at_every_precision(precision: int) -> None:
    """The joint constraint's floor (min_scale = 50 / 10**precision) is the real minimum: shapes of
    exactly that size, rotated and far off-centre, still classify from their rounded coordinates."""
    floor = 50 / 10 ** precision
    for style, offset in (("absolute", 0.0), ("mixed", 100000.0)):
        point = {"precision": precision, "min_scale": floor, "max_scale": floor, "max_rotation": 180,
                 "path_style": style, "max_offset": offset}
        for t in generate_tests(TASK, point, global_seed=23, stop=80):
            assert classify(t.question.splitlines()[1]) == t.reference, t.question
