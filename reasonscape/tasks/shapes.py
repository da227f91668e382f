"""Shapes: name the shape an SVG path draws, choosing among a few listed shape names.

Fifteen shape types that are distinguishable from coordinates alone: four triangles (equilateral,
isosceles, right, scalene), six quadrilaterals (square, rectangle, rhombus, parallelogram,
trapezoid, kite), four regular polygons (pentagon .. octagon) and a circle drawn with arcs. Each
shape gets random proportions inside margins that keep the classes apart even after rounding
(e.g. a rectangle's sides differ by at least a third, a rhombus' angles are 40..70 degrees), then a
random rotation, scale and translation, a random starting vertex and direction, and is written as an
SVG path with absolute, relative or mixed commands at the requested coordinate precision.

The answer is the shape's name (the task description defines each name so exactly one fits); the
question lists `choice_count` candidate names, so a blind guess is right with probability
1/choice_count. Distractors come first from the same family (other quadrilaterals for a kite).
"""

from __future__ import annotations

import math
import random
import re
from typing import ClassVar, Literal

from pydantic import Field

from reasonscape.tasks.base import JointConstraint, Task, TaskParams, TestCase

TRIANGLES = ("equilateral triangle", "isosceles triangle", "right triangle", "scalene triangle")
QUADRILATERALS = ("square", "rectangle", "rhombus", "parallelogram", "trapezoid", "kite")
ROUND = ("pentagon", "hexagon", "heptagon", "octagon", "circle")
SHAPES: tuple[str, ...] = TRIANGLES + QUADRILATERALS + ROUND
SHAPE_SETS: dict[str, tuple[str, ...]] = {
    "all": SHAPES,
    "triangles": TRIANGLES,
    "quadrilaterals": QUADRILATERALS,
    "regular": ("equilateral triangle", "square", "pentagon", "hexagon", "heptagon", "octagon", "circle"),
}
_FAMILY = {s: fam for fam in (TRIANGLES, QUADRILATERALS, ROUND) for s in fam}
_SET_COST = {"regular": 0.0, "triangles": 0.15, "all": 0.2, "quadrilaterals": 0.3}
_SIDES = {"pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}

_ALIASES = {
    "right angled triangle": "right triangle", "right-angled triangle": "right triangle",
    "right-triangle": "right triangle", "trapezium": "trapezoid", "regular pentagon": "pentagon",
    "regular hexagon": "hexagon", "regular heptagon": "heptagon", "regular octagon": "octagon",
    "septagon": "heptagon", "diamond": "rhombus", "equilateral": "equilateral triangle",
    "isosceles": "isosceles triangle", "scalene": "scalene triangle",
}
#: Well-formed but wrong-by-design answers: kept as themselves so they grade incorrect, not invalid.
_GENERIC = ("triangle", "quadrilateral", "polygon", "ellipse", "oval", "star", "rhomboid")


class ShapesParams(TaskParams):
    shape_set: Literal["all", "triangles", "quadrilaterals", "regular"] = Field(
        "all", description="which shape types are drawn")
    choice_count: int = Field(5, ge=2, le=15, description="candidate names listed in the question")
    max_rotation: int = Field(45, ge=0, le=180, description="rotation drawn uniformly in +-max degrees")
    min_scale: float = Field(50.0, ge=0.005, le=10000.0, description="smallest shape radius (units)")
    max_scale: float = Field(150.0, ge=0.005, le=10000.0, description="largest shape radius (units)")
    max_offset: float = Field(100.0, ge=0.0, le=100000.0, description="centre drawn in +-max_offset")
    precision: int = Field(1, ge=0, le=4, description="decimals in the emitted coordinates")
    path_style: Literal["absolute", "relative", "mixed"] = Field(
        "absolute", description="SVG commands: absolute (L), relative (l) or a random mix")

    constraints: ClassVar[tuple[JointConstraint, ...]] = (
        JointConstraint(("min_scale", "max_scale"), "min_scale <= max_scale",
                        lambda p: p.min_scale <= p.max_scale),
        JointConstraint(("min_scale", "precision"),
                        "min_scale >= 50 / 10**precision (50, 5, 0.5, 0.05, 0.005 at precision 0..4: "
                        "coarser rounding of a smaller shape would blur the shape classes)",
                        lambda p: p.min_scale >= 50 / 10 ** p.precision),
    )


def _unit_shape(rng: random.Random, shape: str) -> list[tuple[float, float]]:
    """Vertices of `shape` around the origin with radius about 1, counter-clockwise."""
    u = rng.uniform
    if shape in _SIDES or shape == "equilateral triangle" or shape == "square":
        n = _SIDES.get(shape, 3 if shape == "equilateral triangle" else 4)
        return [(math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n)]
    if shape == "isosceles triangle":
        apex = math.radians(rng.choice((u(30, 48), u(72, 80), u(100, 140))))
        h = 0.5 / math.tan(apex / 2)
        return [(-0.5, -h / 2), (0.5, -h / 2), (0.0, h / 2)]
    if shape == "right triangle":
        b = u(1.4, 2.5)
        return [(0.0, 0.0), (1.0, 0.0), (0.0, b)]
    if shape == "scalene triangle":
        while True:
            a, b = u(25, 80), u(25, 80)
            angles = sorted((a, b, 180 - a - b))
            if (angles[0] >= 25 and angles[1] - angles[0] >= 12 and angles[2] - angles[1] >= 12
                    and abs(angles[2] - 90) >= 12):
                break
        A, B, C = (math.radians(x) for x in angles)
        c = math.sin(C)  # side opposite C, from (0,0) to (c,0); law of sines with unit circumdiameter
        bside = math.sin(B)
        return [(0.0, 0.0), (c, 0.0), (bside * math.cos(A), bside * math.sin(A))]
    if shape == "rectangle":
        h = u(0.35, 0.75)
        return [(-1.0, -h), (1.0, -h), (1.0, h), (-1.0, h)]
    if shape == "rhombus":
        t = math.radians(u(40, 70))
        return [(0.0, 0.0), (1.0, 0.0), (1 + math.cos(t), math.sin(t)), (math.cos(t), math.sin(t))]
    if shape == "parallelogram":
        b, t = u(0.4, 0.75), math.radians(u(45, 70))
        return [(0.0, 0.0), (1.0, 0.0), (1 + b * math.cos(t), b * math.sin(t)), (b * math.cos(t), b * math.sin(t))]
    if shape == "trapezoid":
        top, h = u(0.3, 0.7), u(0.35, 0.7)
        x0 = u(-0.1, 1.1 - top)
        return [(0.0, 0.0), (1.0, 0.0), (x0 + top, h), (x0, h)]
    # kite: symmetric about the y axis, top spar clearly longer than the bottom one
    q = u(0.35, 0.45)
    p, w = q * u(1.8, 2.6), u(0.45, 0.6)
    return [(0.0, -q), (w, 0.0), (0.0, p), (-w, 0.0)]


class Shapes(Task):
    name = "shapes"
    label = "Shapes"
    Params = ShapesParams
    description = (
        "You will be given an SVG path. Work out which shape it draws and pick its name from the "
        "listed options. The names mean: equilateral triangle (three equal sides); isosceles "
        "triangle (exactly two equal sides, no right angle); right triangle (one 90-degree angle); "
        "scalene triangle (all sides different, no right angle); square; rectangle (four right "
        "angles, not a square); rhombus (four equal sides, not a square); parallelogram (two pairs "
        "of parallel sides, neither a rectangle nor a rhombus); trapezoid (exactly one pair of "
        "parallel sides); kite (two pairs of equal adjacent sides, not a rhombus); pentagon, "
        "hexagon, heptagon, octagon (regular polygons with 5, 6, 7, 8 sides); circle."
    )
    answer_format = "Write only the shape's name, exactly as listed, between <answer> and </answer> tags."

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: ShapesParams = params  # type: ignore[assignment]
        shape = rng.choice(SHAPE_SETS[p.shape_set])
        scale = rng.uniform(p.min_scale, p.max_scale)
        angle = rng.uniform(-p.max_rotation, p.max_rotation)
        cx, cy = rng.uniform(-p.max_offset, p.max_offset), rng.uniform(-p.max_offset, p.max_offset)
        nd = p.precision

        def num(v: float) -> str:
            s = f"{v:.{nd}f}"
            return "0" if s.lstrip("-").strip("0.") == "" else s

        def rel(v: float) -> bool:
            return p.path_style == "relative" or p.path_style == "mixed" and v < 0.5

        if shape == "circle":
            r = round(scale, nd)
            x0, y0 = round(cx - r, nd), round(cy, nd)
            x1 = round(x0 + 2 * r, nd)
            parts = [f"M {num(x0)},{num(y0)}"]
            for (xa, xb) in ((x0, x1), (x1, x0)):
                if rel(rng.random()):
                    parts.append(f"a {num(r)},{num(r)} 0 1,0 {num(xb - xa)},0")
                else:
                    parts.append(f"A {num(r)},{num(r)} 0 1,0 {num(xb)},{num(y0)}")
            path = " ".join(parts) + " Z"
            n_vertices = 0
        else:
            pts = _unit_shape(rng, shape)
            mx = sum(x for x, _ in pts) / len(pts)
            my = sum(y for _, y in pts) / len(pts)
            rad = max(math.hypot(x - mx, y - my) for x, y in pts)
            c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            k = scale / rad
            pts = [(round(cx + k * ((x - mx) * c - (y - my) * s), nd),
                    round(cy + k * ((x - mx) * s + (y - my) * c), nd)) for x, y in pts]
            start = rng.randrange(len(pts))
            pts = pts[start:] + pts[:start]
            if rng.random() < 0.5:
                pts = pts[:1] + pts[1:][::-1]
            parts = [f"M {num(pts[0][0])},{num(pts[0][1])}"]
            for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
                if rel(rng.random()):
                    parts.append(f"l {num(xb - xa)},{num(yb - ya)}")
                else:
                    parts.append(f"L {num(xb)},{num(yb)}")
            path = " ".join(parts) + " Z"
            n_vertices = len(pts)

        options = [shape] + self._distractors(rng, shape, p.choice_count - 1)
        rng.shuffle(options)
        question = (f"This SVG path draws a single shape:\n{path}\n\n"
                    f"Which shape is it? Options: {', '.join(options)}.")
        return TestCase(
            question=question,
            reference=shape,
            guess_chance=1.0 / p.choice_count,
            meta={"shape": shape, "vertices": n_vertices, "rotation": round(angle, 1),
                  "scale": round(scale, 1), "options": options, "path_style": p.path_style},
        )

    def _distractors(self, rng: random.Random, shape: str, k: int) -> list[str]:
        """k other names: same-family names first (the confusable ones), then the rest."""
        near = [s for s in _FAMILY[shape] if s != shape]
        far = [s for s in SHAPES if _FAMILY[s] is not _FAMILY[shape]]
        rng.shuffle(near)
        rng.shuffle(far)
        return (near + far)[:k]

    def parse_answer(self, text: str) -> str | None:
        return parse_shape(text)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        options = test.meta.get("options") or list(SHAPES)
        return rng.choice([o for o in options if o != test.reference])

    def difficulty(self, params: TaskParams) -> float:
        """0.1 + set cost (regular 0, triangles 0.15, all 0.2, quadrilaterals 0.3)
        + 0.35*log2(choice_count)/log2(15) + 0.15*max_rotation/180 + 0.05*precision
        + path style (absolute 0, mixed 0.15, relative 0.2) + 0.05*log10(max(1, max_offset)/10).

        The default point (all shapes, 5 options, 45 degrees, precision 1, offset 100) is about 0.65.
        """
        p: ShapesParams = params  # type: ignore[assignment]
        style = {"absolute": 0.0, "mixed": 0.15, "relative": 0.2}[p.path_style]
        return (0.1 + _SET_COST[p.shape_set] + 0.35 * math.log2(p.choice_count) / math.log2(15)
                + 0.15 * p.max_rotation / 180 + 0.05 * p.precision + style
                + 0.05 * math.log10(max(10.0, p.max_offset) / 10))


_LEAD = re.compile(r"^(?:the\s+)?(?:final\s+)?(?:answer|shape)\s*(?:is|:|=)\s*|^(?:it\s+is|it's|this\s+is)\s+",
                   re.I)


def parse_shape(text: str) -> str | None:
    """Canonical shape name from a candidate ("A Rhombus.", "**kite**", "right-angled triangle");
    None for lists, hedges or text that is not a shape name."""
    t = text.replace("*", "").replace("`", "").strip().lower()
    t = _LEAD.sub("", t).strip()
    t = t.strip("\"'.!() ").strip()
    t = re.sub(r"^(?:an?|the)\s+", "", t)
    t = re.sub(r"\s+", " ", t)
    if t in SHAPES or t in _GENERIC:
        return t
    return _ALIASES.get(t)


TASK = Shapes()
