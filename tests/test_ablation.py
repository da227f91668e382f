"""`analyze.py ablation`: items paired across two conditions of one model, classified, McNemar per bucket.

Fixtures are real: runner.py runs on the simulated model (sim://) under two samplers or templates, a
dataset config over both evals (reasonscape.items.workflow.write_dataset), a real evaluate pass. The
expected classes are recomputed independently from the raw NDJSON records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from analyze_fixtures import build_demo, run_analyze

from reasonscape.analysis.ablation import CLASSES, ablation, parse_condition
from reasonscape.analysis.compare import compare
from reasonscape.errors import InputError
from reasonscape.identity import eval_id, params_key
from reasonscape.items.workflow import Condition, write_dataset
from reasonscape.pointsdb import PointsDB
from reasonscape.records import iter_step_dicts
from reasonscape.stats import mcnemar

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES, SAMPLERS = ROOT / "templates", ROOT / "samplers"
TINY = """name: tiny
precision:
  low: {count: 16, maxrounds: 1}
tasks:
  - name: arithmetic
    grids:
      g: {length: [4, 8, 16], max_depth: [0, 2]}
  - name: boolean
    grids:
      g: {length: [4, 8], max_depth: [0, 2]}
"""
MODEL = "sim-m"


def run_pair(tmp: Path, conds: list[tuple[str, str, int]], config_text: str = TINY, apibase: str = "sim://?ability=1.2",
             model: str = MODEL) -> Path:
    """Run every (template, sampler, seed) condition on the sim, evaluate them as one dataset; its path."""
    from reasonscape.evaluate import evaluate_dataset
    from reasonscape.runner.run import RunOptions, run_experiment

    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(config_text)
    conditions = []
    for template, sampler, seed in conds:
        run_experiment(RunOptions(config=cfg, template=TEMPLATES / f"{template}.json", sampler=SAMPLERS / f"{sampler}.json",
                                  model=model, apibase=apibase, cache=None, output=tmp / "results", quiet=True, seed=seed))
        conditions.append(Condition(TEMPLATES / f"{template}.json", SAMPLERS / f"{sampler}.json").load_names())
    dataset = write_dataset(tmp, cfg, model, conditions)
    assert evaluate_dataset(dataset, progress=False, parallel=1).exit_code == 0
    return dataset


def raw_outcomes(results: Path, template: str, sampler: str) -> dict[tuple, tuple[bool, str]]:
    """(base_task, params key, index) -> (correct, question) from the NDJSON itself (first occurrence)."""
    out: dict[tuple, tuple[bool, str]] = {}
    for steps in sorted(results.glob("*/result-steps.ndjson")):
        for _, rec in iter_step_dicts(steps):
            if rec["template"] != template or rec["sampler"] != sampler:
                continue
            for t in rec["tests"]:
                key = (rec["base_task"], params_key(rec["params"]), t["index"])
                out.setdefault(key, (t["status"] == "correct", t["question"]))
    return out


@pytest.fixture(scope="module")
def budget(tmp_path_factory):
    """A: zerocot with a 4k budget; B: the same template with a 128-token budget (the sim truncates)."""
    tmp = tmp_path_factory.mktemp("budget")
    return run_pair(tmp, [("zerocot-nosys", "greedy-4k", 42), ("zerocot-nosys", "greedy-128", 42)]), tmp


def _ids(template_a="zerocot-nosys", sampler_a="greedy-4k", template_b="zerocot-nosys", sampler_b="greedy-128"):
    return eval_id(MODEL, template_a, sampler_a), eval_id(MODEL, template_b, sampler_b)


def test_mcnemar_equals_statsmodels_exact_and_chi_square():
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(3)
    pairs = [(0, 1), (1, 0), (5, 5), (0, 12), (3, 30), (200, 160), (1000, 1100), (7, 8)]
    pairs += [tuple(int(x) for x in rng.integers(0, 80, 2)) for _ in range(30)]
    for b, c in pairs:
        if b + c == 0:
            continue
        table = [[11, b], [c, 4]]
        ex, ch = sm_mcnemar(table, exact=True), sm_mcnemar(table, exact=False, correction=True)
        got_ex, got_ch = mcnemar(b, c, exact=True), mcnemar(b, c, exact=False)
        assert got_ex.statistic == ex.statistic and got_ex.pvalue == pytest.approx(ex.pvalue, rel=1e-9)
        assert got_ch.statistic == pytest.approx(ch.statistic, rel=1e-12)
        assert got_ch.pvalue == pytest.approx(ch.pvalue, rel=1e-9)
    b, c = np.array(pairs).T
    vec = mcnemar(b, c, exact=False)  # vectorised = elementwise
    assert list(vec.pvalue) == pytest.approx([mcnemar(int(x), int(y), exact=False).pvalue for x, y in pairs])


def test_mcnemar_without_discordant_pairs_is_no_evidence_and_bad_counts_are_refused():
    assert tuple(mcnemar(0, 0)) == (0.0, 1.0)
    assert tuple(mcnemar(0, 0, exact=False)) == (0.0, 1.0)
    for bad in ((-1, 2), (1.5, 2), (float("nan"), 1), (float("inf"), 1)):
        with pytest.raises(InputError, match="non-negative whole"):
            mcnemar(*bad)


def test_items_are_classified_exactly_as_the_raw_records_say(budget):
    dataset, tmp = budget
    a, b = _ids()
    r = ablation(PointsDB(tmp / "pointsdb.db"), a, b, config=tmp / "cfg.yaml")
    ra = raw_outcomes(tmp / "results", "zerocot-nosys", "greedy-4k")
    rb = raw_outcomes(tmp / "results", "zerocot-nosys", "greedy-128")
    assert set(ra) == set(rb) and len(r.items) == len(ra) > 100
    want = {}
    for key, (ok_a, q) in ra.items():
        ok_b, qb = rb[key]
        assert q == qb
        want[key] = CLASSES[0 if ok_a and not ok_b else 1 if ok_a and ok_b else 2 if not ok_a and not ok_b else 3]
    got = {(row.base_task, params_key(row.params), row.index): row[2] for row in r.items.itertuples(index=False)}
    assert got == want
    questions = {(row.base_task, params_key(row.params), row.index): row.question for row in r.items.itertuples()}
    assert questions == {k: v[1] for k, v in ra.items()}
    # a 128-token budget truncates the sim's reasoning: needs-reasoning dominates, McNemar is decisive
    s = r.summary
    assert s["needs_reasoning"] > 5 * max(s["b_only"], 1) and s["p_exact"] < 1e-10 and s["p_chi2"] < 1e-10
    assert s["verified_points"] == s["points"] and s["seed"] == 42 and s["seed_source"] == "records"


def test_group_counts_agree_with_compare_and_mcnemar_per_group(budget):
    dataset, tmp = budget
    a, b = _ids()
    with PointsDB(tmp / "pointsdb.db") as db:
        r = ablation(db, a, b, config=tmp / "cfg.yaml", group_by="params.length")
        c = compare(db, a, b, group_by="params.length", bootstrap=0)
    g = r.groups.set_index("group")
    cg = c.groups.set_index("group")
    assert list(g.index) == list(cg.index)
    assert (g["needs_reasoning"] == cg["only_a"]).all() and (g["b_only"] == cg["only_b"]).all()
    assert (g["both_right"] == cg["both_right"]).all() and (g["both_wrong"] == cg["both_wrong"]).all()
    for _, row in g.iterrows():
        ex, ch = mcnemar(row["needs_reasoning"], row["b_only"]), mcnemar(row["needs_reasoning"], row["b_only"], False)
        assert row["p_exact"] == pytest.approx(ex.pvalue) and row["chi2"] == pytest.approx(ch.statistic)
        assert row["p_chi2"] == pytest.approx(ch.pvalue)
        assert row[["needs_reasoning", "both_right", "both_wrong", "b_only"]].sum() == row["paired"]
    assert r.items.groupby("group").size().to_dict() == g["paired"].to_dict()


def test_conditions_are_named_by_eval_id_or_key_value_pairs(budget):
    dataset, tmp = budget
    a, b = _ids()
    r = ablation(PointsDB(tmp / "pointsdb.db"), "sampler=greedy-4k", f"model={MODEL},sampler=greedy-128",
                 config=tmp / "cfg.yaml")
    assert (r.conditions["a"]["eval_id"], r.conditions["b"]["eval_id"]) == (a, b)
    assert parse_condition(" a1b2c3 ", "--a") == {"eval_id": "a1b2c3"}
    cases = {"template=zerocot-nosys": "matches 2 evals", "sampler=greedy-9k": "no eval",
             "colour=red": "unknown key", "sampler=": "not key=value", "": "expected an eval_id",
             "sampler=a,sampler=b": "given twice"}
    with PointsDB(tmp / "pointsdb.db") as db:
        for spec, msg in cases.items():
            with pytest.raises(InputError, match=msg):
                ablation(db, spec, b, config=tmp / "cfg.yaml")
        with pytest.raises(InputError, match="same eval"):
            ablation(db, a, a)
        with pytest.raises(InputError, match="A and B differ by it"):
            ablation(db, a, b, group_by="sampler")
        with pytest.raises(InputError, match="no point of the two conditions has it"):
            ablation(db, a, b, group_by="params.lenght")


def test_two_models_are_refused(tmp_path):
    tiny = TINY.split("  - name: boolean")[0]
    dataset = run_pair(tmp_path, [("zerocot-nosys", "greedy-4k", 42)], tiny, model="m1")
    run_pair(tmp_path, [("zerocot-nosys", "greedy-128", 42)], tiny, model="m2")
    # one dataset over both models' evals
    conds = json.loads((tmp_path / "cohort" / "evals.json").read_text())
    first = dict(conds[0], filters={"model": "m1", "template": "zerocot-nosys", "sampler": "greedy-4k"})
    (tmp_path / "cohort" / "evals.json").write_text(json.dumps([first] + conds))
    from reasonscape.evaluate import evaluate_dataset

    assert evaluate_dataset(dataset, progress=False, parallel=1).exit_code == 0
    with pytest.raises(InputError, match="one model's answers"):
        ablation(PointsDB(tmp_path / "pointsdb.db"), eval_id("m1", "zerocot-nosys", "greedy-4k"),
                 eval_id("m2", "zerocot-nosys", "greedy-128"))


def test_runs_with_different_seeds_are_refused_as_mismatched_items(tmp_path):
    tiny = TINY.split("  - name: boolean")[0]
    run_pair(tmp_path, [("zerocot-nosys", "greedy-4k", 42), ("zerocot-nosys", "greedy-128", 7)], tiny)
    a, b = _ids()
    with PointsDB(tmp_path / "pointsdb.db") as db:
        with pytest.raises(InputError, match="seed") as exc:
            ablation(db, a, b, config=tmp_path / "cfg.yaml")
        assert "\n" not in str(exc.value) and "not the same item" in str(exc.value)


def test_a_wrong_run_seed_is_caught_against_the_records(budget):
    dataset, tmp = budget
    a, b = _ids()
    with PointsDB(tmp / "pointsdb.db") as db, pytest.raises(InputError, match="the runs used seed 42, not --run-seed 7"):
        ablation(db, a, b, config=tmp / "cfg.yaml", seed=7)


def test_a_tampered_question_in_one_condition_is_a_one_line_error(budget, tmp_path):
    dataset, tmp = budget
    work = tmp_path / "w"
    shutil.copytree(tmp, work)
    steps = next(p for p in (work / "results").glob("*greedy-128*/result-steps.ndjson"))
    text = steps.read_text()
    i = text.index("Evaluate this expression:\\n") + len("Evaluate this expression:\\n")
    swapped = "7" if text[i] != "7" else "8"  # same length: evaluate's located offsets still hold
    steps.write_text(text[:i] + swapped + text[i + 1:])
    a, b = _ids()
    with PointsDB(work / "pointsdb.db") as db, pytest.raises(InputError, match="asked different questions"):
        ablation(db, a, b, config=work / "cfg.yaml")
    with PointsDB(work / "pointsdb.db") as db:  # --no-verify trusts the seeds and regenerates
        assert len(ablation(db, a, b, config=work / "cfg.yaml", verify=False).items) > 100


def test_items_regenerate_without_the_result_files_and_need_config_or_records(budget, tmp_path):
    dataset, tmp = budget
    a, b = _ids()
    with PointsDB(tmp / "pointsdb.db") as db:
        full = ablation(db, a, b, config=tmp / "cfg.yaml")
    work = tmp_path / "pulled"  # only the DB and the config: as after `data.py pull dataset`
    work.mkdir()
    shutil.copy(tmp / "pointsdb.db", work / "pointsdb.db")
    with PointsDB(work / "pointsdb.db") as db:
        r = ablation(db, a, b, config=tmp / "cfg.yaml")
        assert r.summary["verified_points"] == 0 and r.summary["seed_source"].startswith("runner default")
        assert r.items[["id", "class", "question", "answer"]].equals(full.items[["id", "class", "question", "answer"]])
        with pytest.raises(InputError, match="cannot name its items"):
            ablation(db, a, b)
    with PointsDB(tmp / "pointsdb.db") as db:  # a bare DB whose records are local: items from the records
        bare = ablation(db, a, b)
        assert not bare.summary["regenerated"]
        assert bare.items[["id", "class", "question"]].equals(full.items[["id", "class", "question"]])


def test_cli_markdown_json_png(budget, tmp_path, capsys):
    dataset, tmp = budget
    a, b = _ids()
    code, out, err = run_analyze(capsys, "ablation", dataset, "--a", a, "--b", "sampler=greedy-128")
    assert code == 0 and "needs_reasoning" in out and "| arithmetic |" in out
    code, out, err = run_analyze(capsys, "ablation", dataset, "--a", a, "--b", b, "--format", "json", "--items")
    doc = json.loads(out)
    assert doc["verb"] == "ablation" and doc["conditions"]["a"]["eval_id"] == a
    assert sum(g["paired"] for g in doc["groups"]) == len(doc["items"]) == doc["summary"]["paired"]
    assert {i["class"] for i in doc["items"]} <= set(CLASSES)
    code, out, err = run_analyze(capsys, "ablation", dataset, "--a", a, "--b", b, "--format", "png",
                                 "--output-dir", tmp_path)
    assert code == 0 and (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = run_analyze(capsys, "ablation", dataset, "--a", a, "--b", a)
    assert code == 2 and err.startswith("error: --a and --b name the same eval") and err.count("\n") == 1


def test_demo_dataset_two_budgets_of_one_model(tmp_path, capsys):
    """The shipped demo holds SimQwen-32B under greedy-4k and greedy-2k: every paired test is an item."""
    demo = build_demo(tmp_path)
    code, out, err = run_analyze(capsys, "ablation", demo, "--a", "model=SimQwen-32B,sampler=greedy-4k",
                                 "--b", "model=SimQwen-32B,sampler=greedy-2k", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    s = doc["summary"]
    assert s["paired"] == sum(s[c.replace("-", "_")] for c in CLASSES) > 500
    assert s["verified_points"] == s["points"] and doc["options"]["group_by"] == "base_task"


TWO_ITEM_TASKS = """name: two
precision:
  fixed: {{count: 30, maxrounds: 1}}
tasks:
  - name: items:ta
    source: &s
      path: {path}
      {ida}
      answer_pattern: '####\\s*(.+?)\\s*$'
      answer_type: number
      difficulty: 'count(answer, "<<[^>]*>>")'
      buckets: {{"2": [1, 2], "3": [3, 3], "4": [4, 4], "5+": [5, null]}}
    grids: {{steps: {{bucket: ["2", "3", "4", "5+"]}}}}
  - name: items:tb
    source: {{<<: *s, {idb}}}
    grids: {{steps: {{bucket: ["2", "3", "4", "5+"]}}}}
"""


@pytest.mark.skipif(not (ROOT / "data" / "items" / "gsm8k-synth.jsonl").is_file(), reason="item file not shipped")
def test_two_item_tasks_pool_by_bucket_and_shared_ids_are_selected_once(tmp_path):
    from reasonscape.analysis.stratify import stratify

    path = ROOT / "data" / "items" / "gsm8k-synth.jsonl"
    distinct = TWO_ITEM_TASKS.format(path=path, ida="id_prefix: test_", idb="id_prefix: train_")
    run_pair(tmp_path / "d", [("zerocot-nosys", "greedy-4k", 42), ("zerocot-nosys", "greedy-128", 42)], distinct)
    a, b = _ids()
    with PointsDB(tmp_path / "d" / "pointsdb.db") as db:
        r = ablation(db, a, b, config=tmp_path / "d" / "cfg.yaml")
    assert r.options["group_by"] == "params.bucket" and (r.groups["points"] == 2).all()
    assert r.groups["paired"].tolist() == [60, 60, 60, 60] and r.items["id"].is_unique
    assert set(r.items["base_task"]) == {"items:ta", "items:tb"}
    assert {i.split("_")[0] for i in r.items["id"]} == {"test", "train"}
    # both tasks keep the file's own ids: the same item is tested at two points, and selected once
    shared = TWO_ITEM_TASKS.format(path=path, ida="id: id", idb="id: id")
    run_pair(tmp_path / "s", [("zerocot-nosys", "greedy-4k", 42), ("zerocot-nosys", "greedy-128", 42)], shared)
    with PointsDB(tmp_path / "s" / "pointsdb.db") as db:
        r = ablation(db, a, b, config=tmp_path / "s" / "cfg.yaml")
    both = r.items.groupby("id").size()
    s = stratify(r, {g: 5 for g in ("2", "3", "4", "5+")})
    assert s.summary["duplicate_ids"] == int((both - 1).sum()) and s.selected["id"].is_unique
