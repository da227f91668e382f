"""Cars: track a line of cars through movement operations and say where one person's car ends up.

Cars stand in a line (position 1 = front), each with a unique colour and brand, and carry people
(some cars are empty, some carry several). A list of operations then reorders the line; people stay
in their cars, so the state to track is the order of cars, not of people. Operation complexity
levels add ways to move and to name a car:

1. absolute moves (to position k, to the front/back), cars named by colour;
2. + relative moves (forward/back n), swaps, cars named by brand;
3. + person references ("the car carrying Alice") and moves relative to another car
   ("directly behind the blue car");
4. + occupancy references ("the empty car", "the car carrying exactly 2 people") and position
   references ("the car currently in position 3").

Confounders are statements that sound like operations but change nothing. The question asks for the
position of the car a given person rides in; the answer is an integer.
"""

from __future__ import annotations

import random
import re

from pydantic import Field

from reasonscape.tasks.answers import parse_integer
from reasonscape.tasks.base import Task, TaskParams, TestCase

COLOURS = ("red", "blue", "green", "yellow", "black", "white", "silver", "orange", "purple", "brown",
           "grey", "pink")
BRANDS = ("Toyota", "Ford", "Honda", "BMW", "Audi", "Volvo", "Tesla", "Mazda", "Kia", "Fiat", "Jeep",
          "Subaru")
NAMES = ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack", "Karen",
         "Liam", "Maria", "Noah", "Olivia", "Peter", "Quinn", "Rosa", "Sam", "Tina", "Umar", "Vera",
         "Walter", "Yara", "Zoe", "Oscar", "Hugo", "Nina")
#: Number words up to the most cars (12) and the most people one car can carry (all 24 riders).
_NUM_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
              "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
              "nineteen", "twenty", "twenty-one", "twenty-two", "twenty-three", "twenty-four")

#: Operation kinds unlocked at each complexity level (cumulative).
_OPS_BY_LEVEL = {
    1: ("to_position", "to_front", "to_back"),
    2: ("forward", "back", "swap"),
    3: ("behind", "in_front"),
    4: (),
}
#: Ways to name a car unlocked at each level (cumulative).
_REFS_BY_LEVEL = {1: ("colour",), 2: ("brand",), 3: ("person",), 4: ("occupancy", "position")}


class CarsParams(TaskParams):
    num_cars: int = Field(5, ge=3, le=12, description="cars in the line")
    num_people: int = Field(4, ge=1, le=24, description="people riding in the cars")
    moves: int = Field(4, ge=1, le=40, description="movement operations")
    complexity: int = Field(2, ge=1, le=4, description="operation complexity level (see module doc)")
    confounders: int = Field(2, ge=0, le=30, description="statements that change nothing")


def _unlocked(table: dict[int, tuple[str, ...]], level: int) -> tuple[str, ...]:
    return tuple(x for lvl in range(1, level + 1) for x in table[lvl])


def _positions(n: int) -> str:
    return f"{n} position" + ("" if n == 1 else "s")


class Cars(Task):
    name = "cars"
    label = "Cars"
    Params = CarsParams
    description = (
        "You will be given a line of cars with the people riding in them, followed by a list of events. "
        "People never change cars; only the cars move. Position 1 is the front of the line; 'forward' "
        "and 'in front of' mean towards position 1, 'back' and 'behind' mean away from it. When a car "
        "moves to a position or next to another car, it leaves its old place and the cars in between "
        "shift to close the gap; two cars that swap places exchange positions. Some events change "
        "nothing. Track the line and answer the question."
    )
    answer_format = "Write the final position as a single integer between <answer> and </answer> tags."

    def _describe(self, rng: random.Random, car: int, line: list[int], riders: list[list[str]],
                  colours: list[str], brands: list[str], refs: tuple[str, ...]) -> str:
        """A phrase that names `car` unambiguously right now, using one of the allowed reference kinds."""
        options = ["colour"] + [r for r in refs if r != "colour"]
        while True:
            kind = rng.choice(options)
            if kind == "colour":
                return f"the {colours[car]} car"
            if kind == "brand":
                return f"the {brands[car]}"
            if kind == "person" and riders[car]:
                return f"the car carrying {rng.choice(riders[car])}"
            if kind == "position":
                return f"the car currently in position {line.index(car) + 1}"
            if kind == "occupancy":
                n = len(riders[car])
                if sum(len(r) == n for r in riders) == 1:
                    if n == 0:
                        return "the empty car"
                    return f"the car carrying exactly {_NUM_WORDS[n]} {'person' if n == 1 else 'people'}"
            options = [o for o in options if o != kind]

    def _confounder(self, rng: random.Random, people: list[str], colours: list[str], brands: list[str],
                    n_cars: int) -> str:
        a, b = rng.sample(people, 2) if len(people) > 1 else (people[0], "the parking attendant")
        colour, brand = rng.choice(colours), rng.choice(brands)
        k = rng.randint(1, n_cars)
        return rng.choice((
            f"{a} waves at {b}.",
            f"The driver of the {colour} car honks the horn.",
            f"{a} thinks about moving the {colour} car to position {k}, but it stays where it is.",
            f"The {brand} flashes its headlights.",
            f"{a} checks the mirrors of the car they are riding in.",
            f"The car in position {k} keeps its place.",
            f"{a} asks {b} whether the {brand} should move to the front, and they decide against it.",
        ))

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: CarsParams = params  # type: ignore[assignment]
        n = p.num_cars
        colours = rng.sample(COLOURS, n)
        brands = rng.sample(BRANDS, n)
        people = rng.sample(NAMES, p.num_people)
        riders: list[list[str]] = [[] for _ in range(n)]
        for person in people:
            riders[rng.randrange(n)].append(person)
        line = list(range(n))  # line[i] = car at position i+1; car ids are initial positions
        ops = _unlocked(_OPS_BY_LEVEL, p.complexity)
        refs = _unlocked(_REFS_BY_LEVEL, p.complexity)

        intro = [f"{_NUM_WORDS[n].capitalize()} cars stand in a line, from the front (position 1) to the "
                 "back:"]
        for car in line:
            who = " and ".join(riders[car]) if len(riders[car]) < 3 else (
                ", ".join(riders[car][:-1]) + " and " + riders[car][-1])
            intro.append(f"Position {car + 1}: the {colours[car]} {brands[car]}, "
                         + (f"carrying {who}." if riders[car] else "empty."))

        events: list[str] = []
        moved = [0] * n
        kinds: dict[str, int] = {}
        for _ in range(p.moves):
            car = rng.randrange(n)
            pos = line.index(car)
            kind = rng.choice(ops)
            if kind == "to_front" and pos == 0 or kind == "to_back" and pos == n - 1:
                kind = "to_position"
            if kind == "forward" and pos == 0:
                kind = "back"
            elif kind == "back" and pos == n - 1:
                kind = "forward"
            subject = self._describe(rng, car, line, riders, colours, brands, refs)
            if kind == "to_position":
                k = rng.choice([i for i in range(n) if i != pos])
                line.remove(car)
                line.insert(k, car)
                text = f"{subject} moves to position {k + 1}."
            elif kind == "to_front":
                line.remove(car)
                line.insert(0, car)
                text = f"{subject} moves to the front of the line."
            elif kind == "to_back":
                line.remove(car)
                line.append(car)
                text = f"{subject} moves to the back of the line."
            elif kind in ("forward", "back"):
                room = pos if kind == "forward" else n - 1 - pos
                step = rng.randint(1, min(3, room))
                line.remove(car)
                line.insert(pos - step if kind == "forward" else pos + step, car)
                text = f"{subject} moves {kind} {_positions(step)}."
            else:
                other = rng.choice([c for c in range(n) if c != car])
                # the other car is named before anything moves, so references use the current line
                target = self._describe(rng, other, line, riders, colours, brands, refs)
                if kind == "swap":
                    i, j = pos, line.index(other)
                    line[i], line[j] = line[j], line[i]
                    moved[other] += 1
                    text = f"{subject} and {target} swap places."
                else:
                    line.remove(car)
                    at = line.index(other)
                    line.insert(at + 1 if kind == "behind" else at, car)
                    where = "directly behind" if kind == "behind" else "directly in front of"
                    text = f"{subject} moves {where} {target}."
            moved[car] += 1
            kinds[kind] = kinds.get(kind, 0) + 1
            events.append(text[0].upper() + text[1:])
        for _ in range(p.confounders):
            events.insert(rng.randint(0, len(events)),
                          self._confounder(rng, people, colours, brands, n))

        # ask about someone whose car moved when possible, so the answer needs the events
        movers = [x for x in people if moved[next(c for c in range(n) if x in riders[c])]]
        person = rng.choice(movers or people)
        car = next(c for c in range(n) if person in riders[c])
        answer = line.index(car) + 1
        question = "\n".join(intro + ["", "Then these events happen, in order:"]
                             + [f"{i}. {e}" for i, e in enumerate(events, 1)]
                             + ["", f"At the end, in which position is the car that {person} is riding in?"])
        return TestCase(
            question=question,
            reference=str(answer),
            guess_chance=0.0,
            meta={"person": person, "start_position": car + 1, "car_moves": moved[car], "ops": kinds,
                  "confounders": p.confounders, "num_cars": p.num_cars},
        )

    answer_needs_meta = True

    def parse_answer(self, text: str, meta: dict | None = None) -> str | None:
        """A position: an integer ("Position **3**", "#3"), or "(is|at) the front" = 1 and "(is|at) the
        last/back" = the number of cars when the test's meta gives it."""
        value = parse_integer(text.replace("*", "").replace("#", ""))
        if value is None:
            m = _END_OF_LINE.search(text.replace("*", "").strip())
            if m is None:
                return None
            value = "1" if m.group(1).lower() in ("front", "first") else str((meta or {}).get("num_cars") or "")
        return value if value.isdigit() and int(value) > 0 else None

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        v = int(test.reference)
        return str(v + 1 if v == 1 or rng.random() < 0.5 else v - 1)

    def difficulty(self, params: TaskParams) -> float:
        """0.1 + 0.06*moves + 0.15*(complexity - 1) + 0.03*num_cars + 0.01*num_people + 0.02*confounders.

        The default point (5 cars, 4 people, 4 moves, level 2, 2 confounders) is about 0.72.
        """
        p: CarsParams = params  # type: ignore[assignment]
        return (0.1 + 0.06 * p.moves + 0.15 * (p.complexity - 1) + 0.03 * p.num_cars + 0.01 * p.num_people
                + 0.02 * p.confounders)


#: "... is the front of the line.", "It is at the back.": the position named by its end of the line.
_END_OF_LINE = re.compile(
    r"(?:^|\b(?:is|at|in)\s+)(?:the\s+)?(?:very\s+)?(front|first|last|back)(?:\s+(?:one|car|position|spot|place))?"
    r"(?:\s+of\s+the\s+(?:line|queue))?\s*[.!]?$", re.I)

TASK = Cars()
