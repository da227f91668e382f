"""Hostile values for every option of `analyze.py ablation`, `analyze.py stratify` and the items workflow,
starting from argv that works (test_hostile_cli.py fuzzes the analyze verbs from a bare argv, which
stops at the missing --a/--b; here each case is one bad value in an otherwise complete command).

Requirement as there: success, or exit 1/2 with exactly `error: ...` lines and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hostile_cli import _hostile_values, _materialise, _set, workspace  # noqa: F401 - fixture reused

from reasonscape.cli import analyze as analyze_cli
from reasonscape.items import workflow as workflow_cli

ROOT = Path(__file__).resolve().parents[1]
DEMO_A, DEMO_B = "model=SimQwen-32B,sampler=greedy-4k", "5b654f"


def _ablation(w: dict) -> list[str]:
    return ["ablation", str(w["demo"]), "--a", DEMO_A, "--b", DEMO_B]


def _stratify(w: dict) -> list[str]:
    return ["stratify", str(w["demo"]), "--a", DEMO_A, "--b", DEMO_B, "--targets", "arithmetic=3,boolean=3",
            "--output", str(w["root"] / "strat" / "final.jsonl")]


def _workflow(w: dict) -> list[str]:
    return ["--config", str(w["config"]), "--model", "wf", "--apibase", "sim://?ability=1",
            "--template-a", str(ROOT / "templates" / "zerocot-nosys.json"),
            "--sampler-a", str(ROOT / "samplers" / "greedy-4k.json"),
            "--sampler-b", str(ROOT / "samplers" / "greedy-128.json"), "--targets", "arithmetic=1",
            "--workdir", str(w["root"] / "wf"), "--output", str(w["root"] / "wf" / "final.jsonl"), "--quiet"]


COMMANDS = [("ablation", analyze_cli.main, analyze_cli.cli.commands["ablation"], _ablation, True),
            ("stratify", analyze_cli.main, analyze_cli.cli.commands["stratify"], _stratify, True),
            ("workflow", workflow_cli.main, workflow_cli.command, _workflow, False)]


def _cases() -> list:
    out = []
    stub = {k: Path("/__w__") / k for k in ("root", "config", "run", "cohort", "bad", "eval_id", "demo")}
    for name, _main, command, _build, _sub in COMMANDS:
        for param in command.params:
            for value in _hostile_values(param, stub):
                shown = value if len(value) < 40 else value[:20] + f"...({len(value)})"
                out.append(pytest.param(name, param.name, value, id=f"{name}-{param.name}-{shown!r}"))
    return out


def _run(main, argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, capsys.readouterr().err


def test_the_valid_commands_work(workspace, capsys, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.chdir(workspace["root"])
    for name, main, _command, build, _sub in COMMANDS:
        code, err = _run(main, build(workspace), capsys)
        assert code == 0, (name, err)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name,param_name,value", _cases())
def test_no_traceback_for_hostile_values(name, param_name, value, workspace, capsys, monkeypatch):  # noqa: F811
    monkeypatch.chdir(workspace["root"])
    main, command, build, sub = next((m, c, b, s) for n, m, c, b, s in COMMANDS if n == name)
    param = next(p for p in command.params if p.name == param_name)
    argv = _set(build(workspace), command, param, _materialise(value, workspace), sub)
    code, err = _run(main, argv, capsys)
    assert "Traceback" not in err
    if code != 0:
        assert code in (1, 2, 130), (code, err)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert lines, f"exit {code} without an 'error:' line: {err[-500:]!r}"
        assert all(len(line) < 2000 for line in lines)
