"""Movies: recommend the film that best fits a set of films the user liked (multiple choice).

The reference set is built by filtering a movie table by genres/themes of a random seed film until
every criterion is met by enough films; the target is one more film meeting all of them. The taste is
the set of tags every liked film has (it contains the criteria, so the target shares at least one of
them). The other options come from the anti-reference set: films that have none of the taste's tags
(always), and also none of the references' specific themes and none of the genres most of them have
(these two extras are relaxed step by step only if too few films are left). So exactly one option
shares anything with what the liked films have in common, and the task measures whether the model can
see that common taste (thematic similarity) and recognise it in the options. Options are lettered and
shuffled; the canonical answer is the letter. With `hints` every film, liked or offered, is shown
with its genres and themes, so the question is decidable from its text alone.

The table (reasonscape/data/movies/movies.txt: title|year|genres|themes) is a hand-compiled list of
well-known films; the tags are our own coarse labels.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field

from reasonscape.tasks.base import Task, TaskParams, TestCase

_DATA = Path(__file__).resolve().parent.parent / "data" / "movies" / "movies.txt"
LETTERS = "ABCDEFGHIJKLMNOP"
#: Themes too broad to define a taste on their own (they never count as the "specific" criterion).
GENERIC_THEMES = frozenset({"friendship", "love", "family", "identity"})


class Movie(NamedTuple):
    title: str
    year: int
    genres: tuple[str, ...]
    themes: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})"


def _load() -> tuple[Movie, ...]:
    out = []
    for line in _DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        title, year, genres, themes = line.split("|")
        out.append(Movie(title, int(year), tuple(genres.split(",")), tuple(themes.split(","))))
    return tuple(out)


MOVIES = _load()
# Tags are "g:<genre>" / "t:<theme>" (a genre and a theme may share a word, e.g. music).
_TAGS: tuple[str, ...] = tuple(sorted({f"g:{g}" for m in MOVIES for g in m.genres}
                                      | {f"t:{t}" for m in MOVIES for t in m.themes}))
_TAG_BIT = {t: 1 << i for i, t in enumerate(_TAGS)}
#: Per movie: bitmask over _TAGS; per tag: bitmask over movies.
_MOVIE_TAGS: tuple[int, ...] = tuple(
    sum(_TAG_BIT[f"g:{g}"] for g in m.genres) + sum(_TAG_BIT[f"t:{t}"] for t in m.themes) for m in MOVIES)
_TAG_MOVIES: dict[str, int] = {t: 0 for t in _TAGS}
for _i, _m in enumerate(MOVIES):
    for _t in [f"g:{g}" for g in _m.genres] + [f"t:{t}" for t in _m.themes]:
        _TAG_MOVIES[_t] |= 1 << _i
_SPECIFIC_THEME_BITS = sum(_TAG_BIT[t] for t in _TAGS if t.startswith("t:") and t[2:] not in GENERIC_THEMES)
_TAG_MOVIES_BY_INDEX: tuple[int, ...] = tuple(_TAG_MOVIES[t] for t in _TAGS)
_ALL_MOVIES = (1 << len(MOVIES)) - 1
_ALL_TAGS_MASK = (1 << len(_TAGS)) - 1

_TEMPLATES = (
    "I really enjoyed these movies:\n{refs}\n\nWhich one of the following should I watch next?",
    "A friend loved these films:\n{refs}\n\nWhich of these films is the best recommendation for them?",
    "Here are movies a viewer rated highly:\n{refs}\n\nPick the movie they are most likely to enjoy as well.",
    "Someone who liked\n{refs}\n\nwants one more film in the same vein. Which option fits best?",
)


class MoviesParams(TaskParams):
    reference_count: int = Field(3, ge=1, le=8, description="films the user liked")
    choice_count: int = Field(5, ge=2, le=16, description="lettered options (one fits)")
    hints: bool = Field(False, description="show the genres and themes of every film, liked and offered")


def _members(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _tag_names(mask: int) -> list[str]:
    return [_TAGS[i] for i in _members(mask)]


def _sample_bits(rng: random.Random, mask: int, k: int) -> list[int]:
    """k distinct set-bit positions of `mask`, drawn by rejection (the anti-reference set is a large
    share of the table, so this is a few draws instead of listing hundreds of members)."""
    n = mask.bit_length()
    picked: list[int] = []
    while len(picked) < k:
        i = rng.randrange(n)
        if mask >> i & 1 and i not in picked:
            picked.append(i)
    return picked


def _plain(movie: Movie) -> str:
    return movie.label


def _with_tags(movie: Movie) -> str:
    return f"{movie.label}: genres {', '.join(movie.genres)}; themes {', '.join(movie.themes)}"


def _norm_title(text: str) -> str:
    t = re.sub(r"\s*\(\d{4}\)\s*$", "", text.strip())
    return re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()


class Movies(Task):
    name = "movies"
    label = "Movies"
    Params = MoviesParams
    description = (
        "You will be told which movies someone liked and given a lettered list of candidate movies. "
        "Choose the candidate that best matches their taste: the one that shares the genres and themes "
        "that all the liked movies have in common."
    )
    answer_format = "Write only the letter of your choice between <answer> and </answer> tags, e.g. <answer>B</answer>."

    def _pick(self, rng: random.Random, p: MoviesParams) -> tuple[list[int], int, int, list[int], int]:
        """(reference ids, target id, common-tag mask, distractor ids, exclusion tier used)."""
        need = p.reference_count + 1
        for _attempt in range(200):
            seed = MOVIES[rng.randrange(len(MOVIES))]
            themes = [f"t:{t}" for t in seed.themes if t not in GENERIC_THEMES]
            genres = [f"g:{g}" for g in seed.genres]
            rng.shuffle(themes)
            rng.shuffle(genres)
            cand, criteria = _ALL_MOVIES, []
            for tag in themes + genres:
                narrowed = cand & _TAG_MOVIES[tag]
                if narrowed.bit_count() >= need:
                    cand = narrowed
                    criteria.append(tag)
                    if len(criteria) == 3:
                        break
            if not any(c.startswith("t:") for c in criteria):
                continue
            members = rng.sample(_members(cand), need)
            target, refs = members[0], members[1:]
            common = _ALL_TAGS_MASK  # the taste: tags every liked film has (the target has some)
            for i in refs:
                common &= _MOVIE_TAGS[i]
            ref_specific = 0
            genre_votes: dict[str, int] = {}
            for i in refs:
                ref_specific |= _MOVIE_TAGS[i] & _SPECIFIC_THEME_BITS
                for g in MOVIES[i].genres:
                    genre_votes[g] = genre_votes.get(g, 0) + 1
            majority = sum(_TAG_BIT[f"g:{g}"] for g, n in genre_votes.items() if 2 * n > len(refs))
            # strictest exclusion first; looser ones only when the strict pool is too small, but a
            # distractor never has any tag of the taste
            tiers = (common | ref_specific | majority, common | ref_specific, common)
            for tier, forbidden in enumerate(tiers):
                anti = _ALL_MOVIES
                for t in _members(forbidden):
                    anti &= ~_TAG_MOVIES_BY_INDEX[t]
                if anti.bit_count() >= p.choice_count - 1:
                    return refs, target, common, _sample_bits(rng, anti, p.choice_count - 1), tier
        raise RuntimeError("movies: could not build a reference set")  # pragma: no cover

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: MoviesParams = params  # type: ignore[assignment]
        refs, target, common, distractors, tier = self._pick(rng, p)
        options = [target] + distractors
        rng.shuffle(options)
        answer = LETTERS[options.index(target)]
        shown = _with_tags if p.hints else _plain
        ref_lines = [f"- {shown(MOVIES[i])}" for i in refs]
        template = rng.randrange(len(_TEMPLATES))
        body = _TEMPLATES[template].format(refs="\n".join(ref_lines))
        opts = "\n".join(f"({LETTERS[k]}) {shown(MOVIES[i])}" for k, i in enumerate(options))
        return TestCase(
            question=f"{body}\n\n{opts}",
            reference=answer,
            guess_chance=1.0 / p.choice_count,
            meta={"template": template, "target": MOVIES[target].label,
                  "references": [MOVIES[i].label for i in refs],
                  "options": [MOVIES[i].label for i in options],
                  "common_tags": _tag_names(common), "matching_tags": _tag_names(common & _MOVIE_TAGS[target]),
                  "exclusion_tier": tier},
        )

    answer_needs_meta = True

    def parse_answer(self, text: str, meta: dict[str, Any] | None = None) -> str | None:
        """Option letter from "B", "(B)", "B)", "B. Title", "Option B"; with the test's `meta`
        (its option titles) also from the exact title alone. Several letters or a letter whose
        title names another option are None."""
        options = (meta or {}).get("options") or []
        return parse_choice(text, options)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        k = len(test.meta.get("options") or ()) or 2
        return rng.choice([c for c in LETTERS[:k] if c != test.reference])

    def difficulty(self, params: TaskParams) -> float:
        """0.15 + 0.4*log2(choice_count)/log2(12) + 0.08*max(0, 4 - reference_count)
        - 0.1 if hints.

        Fewer liked films give less signal about the taste; more options give more near misses. The
        default point (3 references, 5 options, no hints) is about 0.49.
        """
        p: MoviesParams = params  # type: ignore[assignment]
        return (0.15 + 0.4 * math.log2(p.choice_count) / math.log2(12)
                + 0.08 * max(0, 4 - p.reference_count) - (0.1 if p.hints else 0.0))


_LEAD = re.compile(r"^(?:the\s+)?(?:final\s+)?(?:answer|choice|option|letter|pick)\s*(?:is)?\s*[:=]?\s*",
                   re.I)
_LETTER = re.compile(r"^[(\[]?([A-Pa-p])(?:[)\].:]|$)\s*(.*)$", re.S)
_MORE_LETTERS = re.compile(r"(?:\bor\b|\band\b|\bmaybe\b|\bperhaps\b|/|,|&)\s*[(\[]?[A-P](?:$|[\s.):\],])")


def parse_choice(text: str, options: list[str] | tuple[str, ...] = ()) -> str | None:
    """Canonical option letter of a multiple-choice answer (see Movies.parse_answer)."""
    t = text.replace("*", "").replace("`", "").strip()
    t = _LEAD.sub("", t).strip().strip("\"'").strip()
    titles = [_norm_title(o) for o in options]
    whole = _norm_title(t.rstrip("."))
    if whole and whole in titles:
        return LETTERS[titles.index(whole)]
    m = _LETTER.match(t)
    if not m:
        return None
    letter, rest = m.group(1), m.group(2).strip()
    letter = letter.upper()  # a delimiter is required after it, so prose like "a movie" never gets here
    if options and LETTERS.index(letter) >= len(options):
        return None
    if rest:
        if _MORE_LETTERS.search(rest):
            return None
        named = _norm_title(rest.rstrip("."))
        if titles and named in titles and titles.index(named) != LETTERS.index(letter):
            return None  # the letter and the title disagree
    return letter


TASK = Movies()
