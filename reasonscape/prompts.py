"""Templates and samplers: turning a generated test into the request an endpoint receives.

A template (templates/*.json) says how a test becomes chat turns (or one raw completion prompt); a
sampler (samplers/*.json) holds the generation parameters copied into the request body. The request
body is the cache key, so everything that can change an answer is in it and nothing else is.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reasonscape.errors import ConfigError, close_matches_hint, read_input_text, shown
from reasonscape.tasks.base import Task, TestCase

#: Salt that moves few-shot examples to a different part of a point's RNG space than its tests.
SHOT_SEED_SALT = 0x5107


#: Placeholders a template may use (filled literally, see `_fill`).
PLACEHOLDERS = ("task_description", "answer_format", "question", "examples")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A template or sampler name (part of the eval identity, shown in folder names): one printable line.
_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")


def check_name(v: str) -> str:
    """A name the user gives (config, template, sampler, grid entry, level, view), or ValueError.

    Names end up in folder names, logs, records and the DB: one printable line, no path separators.
    """
    if not _NAME.match(v) or v.strip() in ("", ".", ".."):
        raise ValueError(f"{v!r} is not a usable name (1-128 printable characters, no / or \\)")
    return v


class _Strict(BaseModel):
    # strict: `true` is not 1 and "3" is not 3; nan/inf are never a setting.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


class Template(_Strict):
    """How a test is presented. Placeholders: {task_description}, {answer_format}, {question}, {examples}.

    Checked when loaded, because a template that drops the question (or the examples it asks for) would
    send every test the same text while the records claim otherwise.
    """

    name: str = ""
    description: str = Field("", max_length=10_000)
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

    @model_validator(mode="after")
    def _coherent(self) -> Template:
        given = self.model_fields_set
        for name in ("system", "user", "prompt", "example_reasoning"):
            text = getattr(self, name) or ""
            for ph in _PLACEHOLDER.findall(text):
                if ph not in PLACEHOLDERS:
                    raise ValueError(f"{name}: unknown placeholder {{{ph}}} (valid: "
                                     f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        if "{examples}" in (self.example_reasoning or ""):
            raise ValueError("example_reasoning: {examples} cannot be used here")
        if self.shots == 0 and self.example_reasoning:
            raise ValueError("example_reasoning: has no effect without shots")
        if self.mode == "completion":
            unused = sorted(given & {"system", "user", "shot_style"})
            if unused:
                raise ValueError(f"{unused[0]}: not used by a completion template (its text is `prompt`)")
            if "{question}" not in self.prompt:
                raise ValueError("prompt: must contain {question} (else every test sends the same text)")
            if self.shots and "{examples}" not in self.prompt:
                raise ValueError(f"prompt: shots is {self.shots} but there is no {{examples}} to put them in")
            return self
        if "prompt" in given:
            raise ValueError("prompt: only used by completion templates (mode: completion)")
        if "{question}" not in self.user:
            raise ValueError("user: must contain {question} (else every test sends the same text)")
        if self.system is not None:
            for ph in ("{question}", "{examples}"):
                if ph in self.system:
                    raise ValueError(f"system: {ph} belongs in user")
        if self.shot_style == "inline" and self.shots and "{examples}" not in self.user:
            raise ValueError(f"user: shots is {self.shots} with shot_style inline but there is no {{examples}}")
        if self.shot_style == "turns" and "{examples}" in self.user:
            raise ValueError("user: {examples} is only filled with shot_style inline")
        return self


#: Request-body keys the runner sets (or relies on): a sampler overriding one would make the request
#: differ from what the records claim (model, question, one non-streamed answer), so it is refused.
RUNNER_KEYS = frozenset({
    "model", "messages", "prompt", "stream", "stream_options", "n", "echo", "suffix", "tools", "tool_choice",
    "functions", "function_call", "parallel_tool_calls", "chat_template", "add_generation_prompt",
    "continue_final_message", "documents", "extra_body", "extra_headers", "extra_query",
})


class Sampler(_Strict):
    """Generation parameters; everything except name/description goes into the request body."""

    name: str = ""
    description: str = Field("", max_length=10_000)
    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1, le=1_000_000)
    min_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=10_000_000)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: list[Annotated[str, Field(min_length=1)]] | None = Field(None, max_length=64)
    reasoning_effort: str | None = Field(None, min_length=1, max_length=32)
    chat_template_kwargs: dict[str, Any] | None = None
    #: Anything else a server accepts, copied into the body verbatim.
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra_body")
    @classmethod
    def _no_overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            if key == "n" and value == 1 and not isinstance(value, bool):
                continue
            if key in RUNNER_KEYS:
                raise ValueError(f"{key}: set by the runner (one answer per test, from the template and "
                                 "--model); a sampler may not override it")
            if key in cls.model_fields:
                raise ValueError(f"{key}: a sampler key; set it at the top level, not under extra_body")
        if "max_completion_tokens" in v and "max_tokens" in v:
            raise ValueError("max_completion_tokens: conflicts with max_tokens")
        return v

    @model_validator(mode="after")
    def _encodable(self) -> Sampler:
        if self.max_tokens is not None and "max_completion_tokens" in self.extra_body:
            raise ValueError("extra_body.max_completion_tokens: conflicts with max_tokens (the cap the runner "
                             "and the sim use)")
        for key, value in self.body_params().items():
            try:  # the body is the cache key: it must encode canonically (64-bit ints, no nan)
                orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
            except TypeError as exc:
                where = "" if key in type(self).model_fields else "extra_body."
                raise ValueError(f"{where}{key}: cannot be sent as JSON ({exc})") from None
        return self

    def body_params(self) -> dict[str, Any]:
        d = self.model_dump(exclude_none=True, exclude={"name", "description", "extra_body"})
        d.update(self.extra_body)
        return d


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} given twice")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _parse_json(path: Path, text: str) -> Any:
    """Strict JSON: duplicate keys, NaN/Infinity and out-of-range numbers are errors, not silent values."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: malformed JSON (nested too deeply)") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: malformed JSON ({str(exc).splitlines()[0]})") from None


def _load_json_model(path: str | Path, model: type[BaseModel], what: str) -> Any:
    path = Path(path)
    raw = _parse_json(path, read_input_text(path, what, cutoff=0.5))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} must be a JSON object (got {type(raw).__name__})")
    raw.setdefault("name", path.stem)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, path, model)) from None


def _format_error(exc: ValidationError, path: Path, model: type[BaseModel]) -> str:
    err = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")[0]
    key = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    if err["type"] == "extra_forbidden":
        if model is Sampler and key in RUNNER_KEYS:
            return f"{path}: {key}: set by the runner (from the template and --model); a sampler may not set it"
        hint = close_matches_hint(key, model.model_fields, n=2)
        extra = " (put server-specific keys under extra_body)" if model is Sampler else ""
        if not hint and model is Template:
            extra = f" (valid: {', '.join(model.model_fields)})"
        return f"{path}: {key}: unknown key{hint}{extra}"
    msg = err["msg"][len("Value error, "):] if err["msg"].startswith("Value error, ") else err["msg"]
    if not key:  # a rule across fields names its field first
        return f"{path}: {msg}"
    if err["type"].endswith("_error") and err["msg"].startswith("Value error, "):
        return f"{path}: {key}: {msg}"
    got = shown(err.get("input"), 60)
    return f"{path}: {key}: {msg} (got {got})"


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
