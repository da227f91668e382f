"""Hostile configs, templates and samplers: every bad file is one `error:` line naming it, exit 2.

Each case is thrown at the loader (load_config / load_template / load_sampler) and at the real CLI
(`runner.py --plan` with the simulated model, in a subprocess): no traceback, no silent acceptance,
the file named, the problem named. A new config rule gets a row here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai_server import sim_runner_argv

from reasonscape.errors import ConfigError
from reasonscape.manifold import MAX_POINTS, load_config
from reasonscape.prompts import load_sampler, load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "zeroshot.json"
SAMPLER = ROOT / "samplers" / "greedy-2k.json"


def cfg(*, top: str = "", precision: str = "{low: {count: 2}}", task: str = "",
        grids: str = "{g: {length: [4, 8]}}", views: str = "", name: str = "arithmetic") -> str:
    """A small valid config with one piece swapped for a hostile one."""
    text = f"name: x\n{top}precision: {precision}\ntasks:\n  - name: {name}\n{task}    grids: {grids}\n"
    return text + (f"    views: {views}\n" if views else "")


def cal(grids: str, task: str = "    mode: calibrate\n") -> str:
    return cfg(name="tables", task=task, grids=grids)


def view(body: str) -> str:
    return cfg(views=f"[{{view: v, {body}}}]")


@dataclass(frozen=True)
class Case:
    cls: str
    name: str
    kind: str  # config | template | sampler
    content: str | bytes
    expected: str  # regex the error line must match (after the file name)


C, T, S = "config", "template", "sampler"
CASES = [
    # -- unknown keys at every level, with close matches ----------------------------------------
    Case("unknown-key", "top-level", C, "cohort: 1\n" + cfg(), r"cohort: unknown key \(valid: name, description"),
    Case("unknown-key", "top-level-misspelt", C, cfg().replace("tasks:", "taks:"), r"taks: unknown key; did you mean tasks"),
    Case("unknown-key", "precision-level", C, cfg(precision="{low: {cont: 2}}"), r"precision\.low\.cont: unknown key; did you mean count"),
    Case("unknown-key", "task-entry", C, cfg(task="    lable: A\n"), r"tasks\[0\]\.lable: unknown key; did you mean label"),
    Case("unknown-key", "grid-row-param", C, cfg(grids="{g: {lenght: 8}}"), r"grids\.g\.lenght: unknown parameter 'lenght' of arithmetic; did you mean length"),
    Case("unknown-key", "view", C, view("gruop_by: [params.length]"), r"views\[0\]\.gruop_by: unknown key; did you mean group_by"),
    Case("unknown-key", "grid-count", C, cfg(grids="{g: {length: 8, count: 64}}"), r"grids\.g\.count: tests per point are set by the precision level"),
    Case("unknown-key", "template", T, '{"user": "{question}", "systme": "x"}', r"systme: unknown key; did you mean system"),
    Case("unknown-key", "template-roles", T, '{"messages": [{"role": "sistem", "content": "x"}]}', r"messages: unknown key \(valid: name"),
    Case("unknown-key", "sampler", S, '{"temprature": 0}', r"temprature: unknown key; did you mean temperature"),
    # -- encoding and file shape ----------------------------------------------------------------
    Case("encoding", "config-latin1", C, "name: caf\xe9\n".encode("latin-1") + cfg().encode()[8:], r"config file is not UTF-8 text \(byte 0xe9"),
    Case("encoding", "config-binary", C, b"\xff\xfe\x00n\x00a", r"config file is not UTF-8 text \(byte 0xff at offset 0\)"),
    Case("encoding", "template-latin1", T, '{"user": "\xe9 {question}"}'.encode("latin-1"), r"template file is not UTF-8"),
    Case("encoding", "sampler-utf16", S, '{"temperature": 0}'.encode("utf-16"), r"sampler file is not UTF-8"),
    Case("shape", "config-empty", C, "", r"config file is empty"),
    Case("shape", "config-comments-only", C, "# nothing here\n", r"config file has no settings"),
    Case("shape", "config-list", C, "- name: x\n", r"top level must be a mapping .*\(got a list\)"),
    Case("shape", "config-scalar", C, "just text\n", r"top level must be a mapping .*\(got a string\)"),
    Case("shape", "config-number", C, "42\n", r"top level must be a mapping .*\(got a number\)"),
    Case("shape", "config-invalid-yaml", C, "name: x\ntasks: [\n", r":\d+: invalid YAML"),
    Case("shape", "config-deep-nesting", C, "name: " + "[" * 5000 + "]" * 5000 + "\n", r"invalid YAML"),
    Case("shape", "template-empty", T, "   \n", r"template file is empty"),
    Case("shape", "template-list", T, "[]", r"a template must be a JSON object \(got list\)"),
    Case("shape", "sampler-scalar", S, '"greedy"', r"a sampler must be a JSON object \(got str\)"),
    Case("shape", "sampler-malformed", S, '{"temperature": 0,}', r":1: malformed JSON"),
    # -- sampler keys the runner owns -----------------------------------------------------------
    *[Case("sampler-override", f"extra_body-{k}", S, f'{{"extra_body": {{"{k}": {v}}}}}',
           rf"extra_body: {k}: set by the runner")
      for k, v in [("messages", '[{"role": "user", "content": "same"}]'), ("model", '"other"'),
                   ("prompt", '"same"'), ("stream", "true"), ("n", "4"), ("echo", "true"),
                   ("tools", "[]"), ("chat_template", '"{{ x }}"'), ("extra_body", "{}"),
                   ("add_generation_prompt", "false")]],
    Case("sampler-override", "top-level-messages", S, '{"messages": []}', r"messages: set by the runner"),
    Case("sampler-override", "top-level-model", S, '{"model": "x"}', r"model: set by the runner"),
    Case("sampler-override", "n-bool", S, '{"extra_body": {"n": true}}', r"extra_body: n: set by the runner"),
    Case("sampler-override", "known-key-in-extra_body", S, '{"temperature": 0, "extra_body": {"temperature": 1}}',
         r"extra_body: temperature: a sampler key; set it at the top level"),
    Case("sampler-override", "max_completion_tokens-beside-max_tokens", S,
         '{"max_tokens": 100, "extra_body": {"max_completion_tokens": 5000}}', r"max_completion_tokens: conflicts with max_tokens"),
    Case("sampler-override", "unencodable-int", S, '{"extra_body": {"x": 123456789012345678901234567890}}',
         r"extra_body\.x: cannot be sent as JSON"),
    # -- templates ------------------------------------------------------------------------------
    Case("template", "no-question", T, '{"user": "Solve it."}', r"user: must contain \{question\}"),
    Case("template", "completion-no-question", T, '{"mode": "completion", "prompt": "{task_description}"}', r"prompt: must contain \{question\}"),
    Case("template", "unknown-placeholder", T, '{"user": "{questoin}"}', r"user: unknown placeholder \{questoin\}"),
    Case("template", "inline-shots-no-examples", T, '{"user": "{question}", "shots": 2, "shot_style": "inline"}', r"no \{examples\}"),
    Case("template", "completion-shots-no-examples", T, '{"mode": "completion", "shots": 2, "prompt": "{question}"}', r"prompt: shots is 2 .*no \{examples\}"),
    Case("template", "examples-in-turns", T, '{"user": "{examples}{question}"}', r"only filled with shot_style inline"),
    Case("template", "question-in-system", T, '{"system": "{question}", "user": "{question}"}', r"system: \{question\} belongs in user"),
    Case("template", "prompt-in-chat", T, '{"user": "{question}", "prompt": "{question}"}', r"prompt: only used by completion templates"),
    Case("template", "user-in-completion", T, '{"mode": "completion", "user": "{question}"}', r"user: not used by a completion template"),
    Case("template", "reasoning-without-shots", T, '{"example_reasoning": "think"}', r"example_reasoning: has no effect without shots"),
    Case("template", "shots-bool", T, '{"shots": true}', r"shots: Input should be a valid integer \(got True\)"),
    Case("template", "shots-negative", T, '{"shots": -1}', r"shots: Input should be greater than or equal to 0"),
    Case("template", "shots-huge", T, '{"shots": 100000}', r"shots: Input should be less than or equal to 16"),
    Case("template", "mode-unknown", T, '{"mode": "raw"}', r"mode: Input should be 'chat' or 'completion'"),
    Case("template", "user-not-string", T, '{"user": ["{question}"]}', r"user: Input should be a valid string"),
    Case("template", "name-traversal", T, '{"name": "../../x", "user": "{question}"}', r"name: .*not a usable name"),
    # -- calibration / target_tokens ------------------------------------------------------------
    Case("target-tokens", "negative", C, cal("{g: {target_tokens: -5}}"), r"target_tokens: -5 is not a token count"),
    Case("target-tokens", "zero", C, cal("{g: {target_tokens: [0]}}"), r"target_tokens: 0 is not a token count"),
    Case("target-tokens", "string", C, cal("{g: {target_tokens: [lots]}}"), r"target_tokens: 'lots' is not a token count"),
    Case("target-tokens", "bool", C, cal("{g: {target_tokens: true}}"), r"target_tokens: True is not a token count"),
    Case("target-tokens", "float", C, cal("{g: {target_tokens: 1500.5}}"), r"target_tokens: 1500\.5 is not a token count"),
    Case("target-tokens", "huge", C, cal("{g: {target_tokens: 1000000000000}}"), r"target_tokens: 1000000000000 is not a token count"),
    Case("target-tokens", "empty-list", C, cal("{g: {target_tokens: []}}"), r"target_tokens: an empty list"),
    Case("target-tokens", "nan", C, cal("{g: {target_tokens: .nan}}"), r"target_tokens: nan is not a finite number"),
    Case("target-tokens", "nested-list", C, cal("{g: {target_tokens: [[100]]}}"), r"target_tokens: \[100\] is not a token count"),
    Case("target-tokens", "grid-mode", C, cfg(grids="{g: {length: 8, target_tokens: 100}}"), r"only valid in calibrate mode"),
    Case("target-tokens", "uncalibrated-task", C, cfg(task="    mode: calibrate\n", grids="{g: {target_tokens: 100}}"),
         r"tasks\[0\]\.mode: calibrate: task 'arithmetic' has no calibrated parameter"),
    Case("target-tokens", "param-beside-target", C, cal("{g: {target_tokens: 100, num_rows: 5}}"), r"num_rows: set by calibration"),
    Case("target-tokens", "missing", C, cal("{g: {format: csv}}"), r"grids\.g: calibrate mode needs target_tokens"),
    # -- views: group_by, facet_by, filters -----------------------------------------------------
    Case("views", "group_by-unknown-param", C, view("group_by: [params.lenght]"), r"group_by\[0\]: 'params\.lenght': arithmetic has no parameter 'lenght'; did you mean length"),
    Case("views", "group_by-not-a-path", C, view("group_by: [length]"), r"group_by: .*not a params"),
    Case("views", "group_by-string", C, view("group_by: params.length"), r"group_by: Input should be a valid list"),
    Case("views", "group_by-twice", C, view("group_by: [params.length, params.length]"), r"group_by: .*listed twice"),
    Case("views", "group_by-manifold-unknown", C, view("group_by: [manifold.size]"), r"manifold\.id and manifold\.target_tokens only"),
    Case("views", "facet_by-unknown-param", C, view("group_by: [params.length], facet_by: params.depth"), r"facet_by: 'params\.depth': arithmetic has no parameter"),
    Case("views", "facet_by-not-a-path", C, view("group_by: [params.length], facet_by: nonsense"), r"facet_by: 'nonsense' is not a params"),
    Case("views", "filter-unknown-key", C, view("group_by: [params.length], filters: {lenght: 8}"), r"filters\.lenght: unknown filter key 'lenght'"),
    Case("views", "filter-unknown-param", C, view("group_by: [params.length], filters: {params.foo: 1}"), r"filters\.params\.foo: 'params\.foo': arithmetic has no parameter 'foo'"),
    Case("views", "filter-wrong-type", C, view("group_by: [params.length], filters: {params.length: eight}"), r"filters\.params\.length: 'eight': Input should be a valid integer"),
    Case("views", "filter-bool-for-int", C, view("group_by: [params.length], filters: {params.max_depth: true}"), r"filters\.params\.max_depth: True: Input should be a valid integer"),
    Case("views", "filter-out-of-range", C, view("group_by: [params.length], filters: {params.length: [8, 1000]}"), r"filters\.params\.length: 1000: Input should be less than or equal to 100"),
    Case("views", "filter-empty-list", C, view("group_by: [params.length], filters: {params.length: []}"), r"an empty list matches nothing"),
    Case("views", "filter-nested", C, view("group_by: [params.length], filters: {params.length: [[8]]}"), r"\[8\] is not a value"),
    Case("views", "filter-unknown-grid", C, view("group_by: [params.length], filters: {manifold.id: gg}"), r"filters\.manifold\.id: 'gg' is not a grid entry of arithmetic; did you mean g"),
    Case("views", "filter-other-task", C, view("group_by: [params.length], filters: {base_task: boolean}"), r"the view belongs to task 'arithmetic'"),
    Case("views", "filter-groups-shape", C, view("group_by: [params.length], filters: {groups: [size]}"), r"groups are lists of 'key:value' strings"),
    Case("views", "view-name-twice", C, cfg(views="[{view: v, group_by: [params.length]}, {view: v, group_by: [params.max_depth]}]"), r"views\[1\]\.view: 'v' listed twice"),
    # -- precision levels -----------------------------------------------------------------------
    *[Case("precision", pid, C, cfg(precision=f"{{low: {level}}}"), expected) for pid, level, expected in [
        ("count-0", "{count: 0}", r"precision\.low\.count: Input should be greater than or equal to 1"),
        ("count-negative", "{count: -32}", r"precision\.low\.count: Input should be greater than or equal to 1"),
        ("count-bool", "{count: true}", r"precision\.low\.count: Input should be a valid integer \(got True\)"),
        ("count-string", "{count: '32'}", r"precision\.low\.count: Input should be a valid integer \(got '32'\)"),
        ("count-float", "{count: 32.5}", r"precision\.low\.count: Input should be a valid integer"),
        ("count-huge", "{count: 1000000000}", r"precision\.low\.count: Input should be less than or equal to 100000"),
        ("count-nan", "{count: .nan}", r"precision\.low\.count: nan is not a finite number"),
        ("targetci-over-1", "{count: 8, targetci: 1.5}", r"precision\.low\.targetci: Input should be less than or equal to 0\.5"),
        ("targetci-zero", "{count: 8, targetci: 0}", r"precision\.low\.targetci: Input should be greater than 0"),
        ("targetci-negative", "{count: 8, targetci: -0.1}", r"precision\.low\.targetci: Input should be greater than 0"),
        ("targetci-nan", "{count: 8, targetci: .nan}", r"precision\.low\.targetci: nan is not a finite number"),
        ("targetci-inf", "{count: 8, targetci: .inf}", r"precision\.low\.targetci: inf is not a finite number"),
        ("targetci-bool", "{count: 8, targetci: true}", r"precision\.low\.targetci: Input should be a valid number"),
        ("maxrounds-0", "{count: 8, maxrounds: 0}", r"precision\.low\.maxrounds: Input should be greater than or equal to 1"),
        ("maxrounds-bool", "{count: 8, maxrounds: true}", r"precision\.low\.maxrounds: Input should be a valid integer"),
        ("tests-per-point", "{count: 100000, maxrounds: 1000}", r"count \* maxrounds = 100000000 tests per point"),
        ("targetciht-alone", "{count: 8, targetciht: 0.2}", r"targetciht needs targetci"),
        ("htrate-alone", "{count: 8, targetci: 0.1, htrate: 0.5}", r"htrate only matters with targetciht"),
        ("abortht-over-1", "{count: 8, abortht: 2}", r"precision\.low\.abortht: Input should be less than or equal to 1"),
        ("level-not-mapping", "[8]", r"precision\.low: Input should be a valid dictionary"),
    ]],
    Case("precision", "no-levels", C, cfg(precision="{}"), r"precision: define at least one level"),
    Case("precision", "list", C, cfg(precision="[low]"), r"precision: Input should be a valid dictionary"),
    # -- bools and other non-numbers in grids (read by the task's strict params) -----------------
    Case("grid-types", "max_depth-true", C, cfg(grids="{g: {length: 8, max_depth: true}}"), r"max_depth = True"),
    Case("grid-types", "length-string", C, cfg(grids="{g: {length: '8'}}"), r"length = '8'"),
    Case("grid-types", "nan-value", C, cfg(grids="{g: {length: 8, prob_dewhitespace: .nan}}"), r"grids\.g\.prob_dewhitespace: nan is not a finite number"),
    Case("grid-types", "inf-in-list", C, cfg(grids="{g: {length: 8, prob_dewhitespace: [0.0, -.inf]}}"), r"prob_dewhitespace\[1\]: -inf is not a finite number"),
    Case("grid-types", "mapping-value", C, cfg(grids="{g: {length: {a: 1}}}"), r"grids\.g\.length: \{'a': 1\} is not a value"),
    Case("grid-types", "nested-list", C, cfg(grids="{g: {length: [[4, 8]]}}"), r"grids\.g\.length: \[4, 8\] is not a value"),
    Case("grid-types", "date-value", C, cfg(top="description: 2024-01-01\n"), r"description: 2024-01-01 reads as a date"),
    Case("grid-types", "yaml-binary", C, cfg(top="description: !!binary aGk=\n"), r"description: a YAML bytes is not a valid value"),
    # -- siblings: duplicates, empties, huge, strings for lists, traversal, aliases --------------
    Case("siblings", "duplicate-task", C, cfg() + "  - name: arithmetic\n    grids: {h: {length: 16}}\n", r"task 'arithmetic' listed twice"),
    Case("siblings", "duplicate-yaml-key", C, cfg(grids="{g: {length: 4}, g: {length: 8}}"), r":\d+: invalid YAML \(key 'g' given twice\)"),
    Case("siblings", "duplicate-top-key", C, "name: y\n" + cfg(), r"invalid YAML \(key 'name' given twice\)"),
    Case("siblings", "duplicate-json-key", S, '{"temperature": 0, "temperature": 1}', r"malformed JSON \(key 'temperature' given twice\)"),
    Case("siblings", "duplicate-axis-value", C, cfg(grids="{g: {length: [4, 4]}}"), r"grids\.g\.length: value 4 listed twice"),
    Case("siblings", "empty-axis", C, cfg(grids="{g: {length: []}}"), r"grids\.g\.length: an empty list of values"),
    Case("siblings", "empty-point-list", C, cfg(grids="{g: []}"), r"grids\.g: an empty list of points"),
    Case("siblings", "empty-grids", C, cfg(grids="{}"), r"grids: Dictionary should have at least 1 item"),
    Case("siblings", "null-grid", C, cfg(grids="{g: }"), r"grids\.g: expected a mapping"),
    Case("siblings", "no-tasks", C, "name: x\ntasks: []\n", r"tasks: List should have at least 1 item"),
    Case("siblings", "tasks-string", C, "name: x\ntasks: arithmetic\n", r"tasks: Input should be a valid list \(got 'arithmetic'\)"),
    Case("siblings", "stop-string", S, '{"stop": "</answer>"}', r"stop: Input should be a valid list"),
    Case("siblings", "stop-empty-string", S, '{"stop": [""]}', r"stop\.0: String should have at least 1 character"),
    Case("siblings", "huge-grid", C, cfg(grids=f"{{g: {{length: {list(range(2, 101))}, min_value: "
                                               f"{list(range(-9999, -8999))}, max_value: {list(range(100))}}}}}"),
         rf"the grids define 9,900,000 points \(at most {MAX_POINTS:,}\)"),
    Case("siblings", "unknown-task", C, cfg(name="arithmetc"), r"tasks\[0\]\.name: unknown task 'arithmetc' \(did you mean arithmetic"),
    Case("siblings", "missing-name", C, cfg().replace("name: x\n", ""), r"name: missing"),
    Case("siblings", "name-empty", C, cfg().replace("name: x\n", "name: ''\n"), r"name: String should have at least 1 character"),
    Case("siblings", "name-traversal", C, cfg().replace("name: x\n", "name: ../../etc\n"), r"name: '\.\./\.\./etc' is not a usable name"),
    Case("siblings", "name-newline", C, cfg().replace("name: x\n", "name: \"a\\nb\"\n"), r"is not a usable name"),
    Case("siblings", "grid-name-traversal", C, cfg(grids="{'../g': {length: 8}}"), r"grids: '\.\./g' is not a usable name"),
    Case("siblings", "file-traversal", C, cfg(task="    file: ../../../etc/passwd\n"), r"tasks\[0\]\.file: '\.\./\.\./\.\./etc/passwd': must be a relative path"),
    Case("siblings", "file-absolute", C, cfg(task="    file: /etc/passwd\n"), r"tasks\[0\]\.file: '/etc/passwd': must be a relative path"),
    Case("siblings", "sampler-name-traversal", S, '{"name": "../../x"}', r"name: .*not a usable name"),
    Case("siblings", "recursive-alias", C, "name: x\ntasks: &t [*t]\n", r"tasks\[0\]: a YAML alias that contains itself"),
    Case("siblings", "non-string-key", C, cfg(grids="{1: {length: 8}}"), r"grids: key 1 is not a string"),
    Case("siblings", "json-nan", S, '{"temperature": NaN}', r"malformed JSON \(NaN is not a number\)"),
    Case("siblings", "json-inf", S, '{"top_p": 1e400}', r"malformed JSON \(1e400 is out of range\)"),
    Case("siblings", "seed-30-digits", S, '{"seed": 123456789012345678901234567890}', r"seed: Input should be less than or equal to 9223372036854775807"),
    Case("siblings", "temperature-bool", S, '{"temperature": true}', r"temperature: Input should be a valid number"),
    Case("siblings", "max_tokens-zero", S, '{"max_tokens": 0}', r"max_tokens: Input should be greater than or equal to 1"),
    Case("siblings", "description-number", C, cfg(top="description: 12\n"), r"description: Input should be a valid string"),
]


def _write(tmp: Path, case: Case) -> Path:
    path = tmp / {"config": "hostile.yaml", "template": "hostile-tpl.json", "sampler": "hostile-smp.json"}[case.kind]
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content)
    return path


def _cli_args(case: Case, path: Path, out: Path) -> list[str]:
    files = {"config": ROOT / "configs" / "demo.yaml", "template": TEMPLATE, "sampler": SAMPLER, case.kind: path}
    return sim_runner_argv(files["config"], "--plan", "--quiet", "--output", str(out / "results"), "--cache",
                           str(out / "cache"), template=files["template"], sampler=files["sampler"])


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every case through the real CLI, two subprocesses at a time."""
    base = tmp_path_factory.mktemp("hostile")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(item: tuple[int, Case]) -> tuple[str, tuple[Path, subprocess.CompletedProcess[str]]]:
        i, case = item
        folder = base / f"c{i}"
        folder.mkdir()
        path = _write(folder, case)
        proc = subprocess.run(_cli_args(case, path, folder), capture_output=True, text=True, env=env, timeout=120)
        return _id(case), (path, proc)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, enumerate(CASES)))


def _id(case: Case) -> str:
    return f"{case.cls}:{case.name}"


LOADERS = {"config": load_config, "template": load_template, "sampler": load_sampler}


def test_case_ids_are_unique():
    ids = [_id(c) for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_loader_rejects_in_one_line_naming_the_file(tmp_path, case):
    path = _write(tmp_path, case)
    with pytest.raises(ConfigError) as info:
        LOADERS[case.kind](path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert re.search(case.expected, message), message


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_cli_plan_exits_2_with_one_error_line(cli_results, case):
    path, proc = cli_results[_id(case)]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), proc.stderr
    assert re.search(case.expected, lines[0]), lines[0]
    assert proc.stdout == ""


def test_the_harness_accepts_a_valid_config(tmp_path):
    """Control: the base config the cases mutate runs --plan cleanly (so the rejections are real)."""
    case = Case("control", "valid", C, cfg(views="[{view: v, group_by: [params.length], filters: "
                                                 "{params.length: [4, 8], manifold.id: g}}]"), "")
    path = _write(tmp_path, case)
    proc = subprocess.run(_cli_args(case, path, tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "points:" in proc.stdout and "Traceback" not in proc.stderr
    for kind, body in (("template", '{"user": "{question}"}'), ("sampler", '{"temperature": 0}')):
        ok = _write(tmp_path, Case("control", kind, kind, body, ""))
        LOADERS[kind](ok)


def test_unreadable_input_files_are_one_line_errors(tmp_path):
    """A directory, an endless device, an oversized file: one ConfigError naming it (loader and CLI)."""
    from reasonscape.errors import read_input_text

    folder = tmp_path / "configs"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"configs: cannot read the config file \(Is a directory\)"):
        load_config(folder)
    with pytest.raises(ConfigError, match=r"/dev/zero: config file is larger than 1 MiB"):
        read_input_text(Path("/dev/zero"), "config", max_bytes=1024 * 1024)
    with pytest.raises(ConfigError, match=r"/dev/null: sampler file is empty"):
        load_sampler("/dev/null")
    big = tmp_path / "big.json"
    big.write_text('{"description": "' + "x" * (2 * 1024 * 1024) + '"}')
    with pytest.raises(ConfigError, match=r"big\.json: template file is larger than 1 MiB"):
        read_input_text(big, "template", max_bytes=1024 * 1024)
    case = Case("files", "directory", C, "", "")
    proc = subprocess.run(_cli_args(case, folder, tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and str(folder) in proc.stderr


@pytest.mark.parametrize("value, ok", [("0123456789abcdef", True), ("0123456789ABCDEF", True), (7, False),
                                       ("not-an-id", False), (["0123456789abcdef", 3], False)])
def test_view_filter_on_point_ids_takes_the_stable_hex_ids(tmp_path, value, ok):
    """A view's `id` filter names points as PointsDB does (16 hex digits), not by the integer row
    numbers of old DBs."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ntasks:\n  - name: arithmetic\n    grids:\n      g: {length: [4, 8]}\n"
                   f"    views:\n      - {{view: v, group_by: [params.length], filters: {{id: {json.dumps(value)}}}}}\n")
    if ok:
        load_config(cfg)
    else:
        with pytest.raises(ConfigError, match="point ids are 16 hex digits"):
            load_config(cfg)
