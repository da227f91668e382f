"""Templates and samplers: turning a generated test into the request an endpoint receives.

A template (templates/*.json) says how a test becomes chat turns (or one raw completion prompt); a
sampler (samplers/*.json) holds the generation parameters copied into the request body. The request
body is the cache key, so everything that can change an answer is in it and nothing else is.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasonscape.errors import ConfigError, file_not_found
from reasonscape.tasks.base import Task, TestCase

#: Salt that moves few-shot examples to a different part of a point's RNG space than its tests.
SHOT_SEED_SALT = 0x5107


class Template(BaseModel):
    """How a test is presented. Placeholders: {task_description}, {answer_format}, {question}."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    mode: Literal["chat", "completion"] = "chat"
    system: str | None = None
    user: str = "{question}"
    #: Few-shot examples drawn from the same point (different seed) shown before the test.
    shots: int = Field(0, ge=0, le=16)
    #: "turns": each example is a user/assistant pair; "inline": all examples inside the one user turn.
    shot_style: Literal["turns", "inline"] = "turns"
    #: Text put before the answer in each example's assistant turn (chain-of-thought style examples).
    example_reasoning: str = ""
    #: Raw-completion templates: the whole prompt, with {examples} for the inline examples.
    prompt: str = "{task_description}\n{answer_format}\n\n{examples}{question}\n"


class Sampler(BaseModel):
    """Generation parameters; everything except name/description goes into the request body."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = Field(None, gt=0)
    seed: int | None = None
    stop: list[str] | None = None
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    #: Anything else a server accepts, copied into the body verbatim.
    extra_body: dict[str, Any] = Field(default_factory=dict)

    def body_params(self) -> dict[str, Any]:
        d = self.model_dump(exclude_none=True, exclude={"name", "description", "extra_body"})
        d.update(self.extra_body)
        return d


def _load_json_model(path: str | Path, model: type[BaseModel], what: str) -> Any:
    path = Path(path)
    if not path.exists():
        raise file_not_found(path, what, cutoff=0.5)
    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON ({exc.args[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} must be a JSON object")
    raw.setdefault("name", path.stem)
    try:
        return model(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, model.model_fields, n=2)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            extra = " (put server-specific keys under extra_body)" if model is Sampler else ""
            raise ConfigError(f"{path}: {key}: unknown key{hint}{extra}") from None
        raise ConfigError(f"{path}: {key}: {err['msg']} (got {err.get('input')!r})") from None


def load_template(path: str | Path) -> Template:
    return _load_json_model(path, Template, "template")


def load_sampler(path: str | Path) -> Sampler:
    return _load_json_model(path, Sampler, "sampler")


@dataclass(frozen=True, slots=True)
class PromptContext:
    task_description: str
    answer_format: str


def _fill(text: str, ctx: PromptContext, question: str, examples: str = "") -> str:
    # str.replace, not str.format: questions contain braces (brackets task, JSON tables).
    return (text.replace("{task_description}", ctx.task_description)
            .replace("{answer_format}", ctx.answer_format)
            .replace("{examples}", examples)
            .replace("{question}", question))


def few_shot_examples(task: Task, params: Any, point_seed_value: int, n: int) -> list[TestCase]:
    """`n` examples for a point, from an RNG disjoint from the point's tests (so never a test itself)."""
    if n <= 0:
        return []
    rng = random.Random(point_seed_value ^ (SHOT_SEED_SALT << 32))
    return [task.generate(rng, params) for _ in range(n)]


def _example_answer(template: Template, example: TestCase) -> str:
    prefix = f"{template.example_reasoning}\n" if template.example_reasoning else ""
    return f"{prefix}<answer>{example.reference}</answer>"


def render_messages(template: Template, task: Task, question: str,
                    examples: list[TestCase] | None = None) -> list[dict[str, str]]:
    """Chat turns for one test."""
    ctx = PromptContext(task.description, task.answer_format)
    examples = examples or []
    msgs: list[dict[str, str]] = []
    if template.system is not None:
        msgs.append({"role": "system", "content": _fill(template.system, ctx, question)})
    if template.shot_style == "turns":
        for ex in examples:
            msgs.append({"role": "user", "content": _fill(template.user, ctx, ex.question)})
            msgs.append({"role": "assistant", "content": _example_answer(template, ex)})
        msgs.append({"role": "user", "content": _fill(template.user, ctx, question)})
    else:
        block = "".join(f"Example input:\n{ex.question}\nExample answer:\n{_example_answer(template, ex)}\n\n"
                        for ex in examples)
        msgs.append({"role": "user", "content": _fill(template.user, ctx, question, block)})
    return msgs


def render_prompt(template: Template, task: Task, question: str, examples: list[TestCase] | None = None) -> str:
    """The raw prompt of a completion-mode template."""
    ctx = PromptContext(task.description, task.answer_format)
    block = "".join(f"{ex.question}\n{_example_answer(template, ex)}\n\n" for ex in examples or [])
    return _fill(template.prompt, ctx, question, block)


def request_body(template: Template, sampler: Sampler, model: str, task: Task, question: str,
                 examples: list[TestCase] | None = None) -> dict[str, Any]:
    """The JSON body sent to /v1/chat/completions (or /v1/completions for completion templates)."""
    body: dict[str, Any] = {"model": model}
    if template.mode == "chat":
        body["messages"] = render_messages(template, task, question, examples)
    else:
        body["prompt"] = render_prompt(template, task, question, examples)
    body.update(sampler.body_params())
    return body


def endpoint_path(template: Template) -> str:
    return "/v1/chat/completions" if template.mode == "chat" else "/v1/completions"
