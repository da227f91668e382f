"""Every option of every built CLI, fed hostile values: no traceback, ever.

The hand-written hostile tests (test_hostile_runner/evaluate/config.py) pin specific findings. This
file is the net under them: it walks each click command's parameters by introspection, so a flag added
later is fuzzed without anyone writing a test for it. Each case starts from an argv that works, swaps one
parameter's value for a hostile one (wrong type, empty, huge, non-finite, control characters, an
undecodable file name, a directory, a missing file, a non-UTF-8 file), runs the CLI in-process through
its real entry point, and requires either success or exit 1/2 with exactly one `error: ...` line on
stderr. Any other exception escaping the entry point is a traceback a user would see: the test fails
and names the command, option and value.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from reasonscape.cli import analyze as analyze_cli
from reasonscape.cli import cohort as cohort_cli
from reasonscape.cli import evaluate as evaluate_cli
from reasonscape.cli import probe as probe_cli
from reasonscape.cli import runner as runner_cli
from reasonscape.identity import eval_id

ROOT = Path(__file__).resolve().parents[1]

TINY_CONFIG = """name: hostile
precision:
  low: {count: 4, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: [4], max_depth: [0]}
"""

INT_VALUES = ["abc", "", "-1", "0", "1" * 30, "1e400", "3.5"]
FLOAT_VALUES = ["nan", "inf", "-inf", "-1", "0", "abc", "1e400", ""]
TEXT_VALUES = ["", " ", "\n", "a\nb", "\x00", "x" * 5000, "\udcff\udcfe", "../../../../etc/passwd"]
PATH_KINDS = ["missing", "directory", "non_utf8", "empty", "binary"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    """Valid inputs for every command (a tiny sim run, its DB, a copy of one demo cohort) and bad files."""
    root = tmp_path_factory.mktemp("hostile_cli")
    cfg = root / "tiny.yaml"
    cfg.write_text(TINY_CONFIG)
    from reasonscape.runner import run_experiment

    res = run_experiment(config=cfg, template=ROOT / "templates" / "zerocot-nosys.json",
                         sampler=ROOT / "samplers" / "greedy-4k.json", model="m", apibase="sim://?ability=1",
                         output=root / "runs", cache=None, quiet=True)
    cohort = root / "data" / "demo" / "SimQwen-8B"
    shutil.copytree(ROOT / "data" / "demo" / "SimQwen-8B", cohort)
    evals = json.loads((cohort / "evals.json").read_text())
    bad = root / "bad"
    bad.mkdir()
    (bad / "non_utf8").write_bytes(b"name: \xff\xfe\x00bad\n")
    (bad / "empty").write_bytes(b"")
    (bad / "binary").write_bytes(bytes(range(256)) * 8)
    (bad / "directory").mkdir()
    # The demo dataset with its DB (analyze and probe verbs), two of its eval ids and one point id.
    from analyze_fixtures import build_demo

    from reasonscape.pointsdb import PointsDB

    demo = build_demo(root)
    with PointsDB(root / "pointsdb-demo.db") as db:
        ids = sorted(db.evals()["eval_id"])
        point = str(db.query(columns=["id"])["id"][0])
    return {"root": root, "config": cfg, "run": res.path, "cohort": cohort, "bad": bad,
            "eval_id": eval_id(**evals[0]["filters"]), "demo": demo, "a": ids[0], "b": ids[1], "point": point}


def _runner_argv(w: dict[str, Path]) -> list[str]:
    return ["--config", str(w["config"]), "--template", str(ROOT / "templates" / "zerocot-nosys.json"),
            "--sampler", str(ROOT / "samplers" / "greedy-4k.json"), "--model", "m",
            "--apibase", "sim://?ability=1", "--output", str(w["root"] / "out"),
            "--cache", str(w["root"] / "cache"), "--quiet"]


def _evaluate_argv(w: dict[str, Path]) -> list[str]:
    return ["--interview", str(w["run"]), "--db", str(w["root"] / "e.db"), "--quiet", "--no-scores",
            "--parallel", "1"]


def _verb(name: str, *extra: str) -> Callable[[dict], list[str]]:
    """argv of an analyze/probe verb on the demo dataset; '{a}', '{b}', '{point}', '{out}' are filled in."""
    def build(w: dict) -> list[str]:
        fill = {"a": w["a"], "b": w["b"], "point": w["point"], "out": str(w["root"] / "png")}
        return [name, str(w["demo"]), *(x.format(**fill) for x in extra)]
    return build


#: Extra arguments an analyze verb needs to run at all (its required options), beyond the dataset.
ANALYZE_EXTRA = {"compare": ("{a}", "{b}", "--bootstrap", "50"), "capacity": ("--frontier",),
                 "surface": ("--output-dir", "{out}"), "spiderweb": ("--output-dir", "{out}"),
                 "hazard": ("--output-dir", "{out}"), "compression": ("--output-dir", "{out}"),
                 # ablation/stratify pair two evals of one model (the demo's greedy-4k vs greedy-2k)
                 "ablation": ("--a", "1c7a58", "--b", "5b654f"),
                 "stratify": ("--a", "1c7a58", "--b", "5b654f", "--targets", "arithmetic=3")}
PROBE_EXTRA = {"failure": ("--point-id", "{point}"), "truncation": ("--point-id", "{point}")}

# (name, entry point, click command, valid argv builder)
COMMANDS: list[tuple[str, Callable, click.Command, Callable[[dict], list[str]]]] = [
    ("runner", runner_cli.main, runner_cli.command, _runner_argv),
    ("evaluate", evaluate_cli.main, evaluate_cli.cli, _evaluate_argv),
    ("cohort list", cohort_cli.main, cohort_cli.cli.commands["list"],
     lambda w: ["list", str(w["root"] / "data")]),
    ("cohort info", cohort_cli.main, cohort_cli.cli.commands["info"], lambda w: ["info", str(w["cohort"])]),
    ("cohort verify", cohort_cli.main, cohort_cli.cli.commands["verify"],
     lambda w: ["verify", str(w["cohort"])]),
    ("cohort context", cohort_cli.main, cohort_cli.cli.commands["context"],
     lambda w: ["context", str(w["cohort"]), "--eval-id", str(w["eval_id"]), "--context", "64",
                "--no-register"]),
]
COMMANDS += [(f"analyze {v}", analyze_cli.main, c, _verb(v, *ANALYZE_EXTRA.get(v, ())))
             for v, c in sorted(analyze_cli.cli.commands.items()) if v != "modelinfo"]  # modelinfo: the network
COMMANDS += [(f"probe {v}", probe_cli.main, c, _verb(v, *PROBE_EXTRA.get(v, ())))
             for v, c in sorted(probe_cli.cli.commands.items())]


def _hostile_values(param: click.Parameter, w: dict[str, Path]) -> list[str]:
    kind = param.type
    if isinstance(param, click.Option) and (param.is_flag or param.count):
        return []
    if isinstance(kind, click.Choice):
        return ["", "bogus", "\x00"]
    if isinstance(kind, click.types.IntParamType):
        return INT_VALUES
    if isinstance(kind, click.types.FloatParamType):
        return FLOAT_VALUES
    return TEXT_VALUES + [str(w["bad"] / k) for k in PATH_KINDS]


def _set(argv: list[str], command: click.Command, param: click.Parameter, value: str, sub: bool) -> list[str]:
    """argv with `param` given `value` (replacing its current value, or appended). `sub`: argv starts
    with a subcommand name, so positional arguments start at index 1."""
    out = list(argv)
    if isinstance(param, click.Argument):
        k = [p for p in command.params if isinstance(p, click.Argument)].index(param) + (1 if sub else 0)
        if k < len(out) and not out[k].startswith("-"):
            out[k] = value
        else:
            out.insert(k, value)
        return out
    for opt in param.opts:
        if opt in out:
            i = out.index(opt) + 1
            if i < len(out) and not out[i].startswith("-"):
                out[i] = value
            else:  # an option whose value is optional ("--frontier" alone)
                out.insert(i, value)
            return out
    return out + [max(param.opts, key=len), value]


def _cases() -> list:
    out = []
    w_stub = {k: Path("/__w__") / k for k in ("root", "config", "run", "cohort", "bad", "eval_id", "demo")}
    for name, _main, command, _ in COMMANDS:
        for param in command.params:
            for value in _hostile_values(param, w_stub):
                shown = value if len(value) < 40 else value[:20] + f"...({len(value)})"
                out.append(pytest.param(name, param.name, value, id=f"{name}-{param.name}-{shown!r}"))
    return out


def _materialise(value: str, w: dict[str, Path]) -> str:
    return value.replace(str(Path("/__w__") / "bad"), str(w["bad"]))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name,param_name,value", _cases())
def test_no_traceback_for_hostile_option_values(name, param_name, value, workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace["root"])
    main, command, build = next((m, c, b) for n, m, c, b in COMMANDS if n == name)
    param = next(p for p in command.params if p.name == param_name)
    argv = _set(build(workspace), command, param, _materialise(value, workspace), " " in name)
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code not in (0,):
        assert code in (1, 2, 130), (code, err)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert lines, f"exit {code} without an 'error:' line: {err[-500:]!r}"
        assert all(len(line) < 2000 for line in lines), "an error line should be one readable line"
