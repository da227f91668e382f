"""PointsDBs the analyze tests share: the shipped demo dataset, and sim models of known ability.

Built in temporary directories (never in data/): the demo from the shipped result folders, the sim
DB from real runner.py runs on the simulated model (`sim://?ability=X`) and a real evaluate pass.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Sim models: name -> ability. Two share an ability (cluster must put them together).
SIM_ABILITY = {"sim-strong": 1.9, "sim-mid-a": 1.0, "sim-mid-b": 1.0, "sim-weak": 0.2}


def build_demo(tmp: Path) -> Path:
    """A dataset config over the shipped demo cohorts with its DB in `tmp`; returns the config path."""
    from reasonscape.evaluate import evaluate_dataset

    cfg = tmp / "demo.json"
    cfg.write_text(json.dumps({"name": "demo", "db": "pointsdb-demo.db", "config": str(ROOT / "configs" / "demo.yaml"),
                               "cohorts": [{"path": str(ROOT / "data" / "demo" / "*" / "evals.json")}]}))
    res = evaluate_dataset(cfg, progress=False, parallel=1)
    assert res.exit_code == 0 and res.points_total > 0
    return cfg


def build_sim(tmp: Path, abilities: dict[str, float] = SIM_ABILITY) -> Path:
    """A PointsDB of sim runs (demo config, one run per model); returns the DB path."""
    from reasonscape.evaluate import evaluate_interview
    from reasonscape.runner.run import RunOptions, run_experiment

    folders = []
    for i, (model, ability) in enumerate(abilities.items()):
        res = run_experiment(RunOptions(config=ROOT / "configs" / "demo.yaml",
                                        template=ROOT / "templates" / "zerocot-nosys.json",
                                        sampler=ROOT / "samplers" / "greedy-4k.json", model=model,
                                        apibase=f"sim://?ability={ability}&seed={i + 1}", cache=None,
                                        output=tmp / "results", quiet=True, precision="high"))
        folders.append(str(res.path))
    db = tmp / "pointsdb-sim.db"
    out = evaluate_interview(",".join(folders), db, progress=False, parallel=1)
    assert out.exit_code == 0
    return db


def run_main(main, capsys, *args) -> tuple[int, str, str]:
    """A CLI entry point (analyze.py's, probe.py's ...) in-process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_analyze(capsys, *args) -> tuple[int, str, str]:
    """analyze.py's entry point in-process: (exit code, stdout, stderr)."""
    from reasonscape.cli.analyze import main

    return run_main(main, capsys, *args)
