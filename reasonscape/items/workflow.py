"""The paired-condition item workflow in one command, resumable: test items under condition A and B,
evaluate, classify (ablation), select (stratify).

    python -m reasonscape.items.workflow --config configs/gsm8k-synth.yaml --model M --apibase URL \\
        --template-a templates/zerocot-nosys.json --template-b templates/zeroshot-nosys.json \\
        --sampler samplers/greedy-2k.json --targets 2=150,3=150,4=100,5+=50 --keep keep.txt \\
        --workdir runs/gsm8k --output final.jsonl

Steps (each a library call of the stage that owns it, in this process):
1. runner (condition A), 2. runner (condition B): `run_experiment` with `<workdir>/results` and the
   response cache `<workdir>/cache`. A re-run of the same command continues an interrupted or killed
   run from its NDJSON (the runner's resume, docs/runner.md): no finished test is asked again, and
   answers received before the interruption come from the cache.
3. evaluate: `<workdir>/dataset.json` (a dataset over one cohort holding both evals, the experiment
   config bound so the analysis can regenerate items) -> `<workdir>/pointsdb.db`; incremental.
4. ablation: `<workdir>/ablation.md` and `<workdir>/ablation.json` (with one row per item).
5. stratify: the per-bucket table on stdout, `--output` written atomically when every target is met
   (or --allow-short); otherwise exit 1 and nothing written.

--skip-testing skips 1-2 and works from what was already tested: the result folders in the workdir
(also partial ones; a warning says so) or, without any, the PointsDB already there.

Everything runs in one process, so kill -9 leaves no orphan runner holding a result folder's lock.
"""

from __future__ import annotations

import glob
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.records import write_json_atomic

DATASET_FILE = "dataset.json"
DB_FILE = "pointsdb.db"
COHORT_DIR = "cohort"
RESULTS_DIR = "results"
CACHE_DIR = "cache"


@dataclass
class Condition:
    """One side of the ablation: a template and a sampler (files) and the names they carry."""

    template: Path
    sampler: Path
    template_name: str = ""
    sampler_name: str = ""

    def load_names(self) -> Condition:
        from reasonscape.prompts import load_sampler, load_template

        self.template_name = load_template(self.template).name
        self.sampler_name = load_sampler(self.sampler).name
        return self


@dataclass
class WorkflowOptions:
    config: Path
    model: str
    a: Condition
    b: Condition
    targets: str
    workdir: Path
    output: Path | None = None
    apibase: str | None = None
    apikey: str | None = None
    keep: Path | None = None
    seed: int = 0
    run_seed: int = 42
    precision: str | None = None
    parallel: int = 16
    cache: Path | None = None
    group_by: str | None = None
    skip_testing: bool = False
    allow_short: bool = False
    quiet: bool = False
    runner: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkflowResult:
    folders: dict[str, Path | None]
    dataset: Path
    ablation: Any
    stratify: Any


def _say(opts: WorkflowOptions, text: str) -> None:
    if not opts.quiet:
        click.echo(text, err=True)


def write_dataset(workdir: Path, config: Path, model: str, conditions: list[Condition], name: str = "items") -> Path:
    """`<workdir>/dataset.json` and its cohort's evals.json: one eval per condition, all reading the
    workdir's result folders (evaluate keeps each eval's own records by identity). Returns the dataset path."""
    workdir = workdir.resolve()
    pattern = glob.escape(str(workdir / RESULTS_DIR)) + "/*"
    evals = [{"evaluate": {"glob": pattern},
              "filters": {"model": model, "template": c.template_name, "sampler": c.sampler_name},
              "label": f"{model} {c.template_name} {c.sampler_name}"} for c in conditions]
    (workdir / COHORT_DIR).mkdir(parents=True, exist_ok=True)
    write_json_atomic(workdir / COHORT_DIR / "evals.json", evals)
    dataset = workdir / DATASET_FILE
    write_json_atomic(dataset, {"name": name, "db": DB_FILE, "config": str(Path(config).resolve()),
                                "cohorts": [{"path": f"{COHORT_DIR}/evals.json"}]})
    return dataset


def _folders_status(workdir: Path) -> list[tuple[Path, str]]:
    out = []
    for meta in sorted((workdir / RESULTS_DIR).glob("*/metadata.json")):
        try:
            status = str(json.loads(meta.read_text()).get("status", "?"))
        except (OSError, ValueError):
            status = "unreadable"
        out.append((meta.parent, status))
    return out


def run_workflow(opts: WorkflowOptions) -> WorkflowResult:
    """Run (or resume) the workflow; raises ReasonScapeError subclasses (one line each)."""
    from reasonscape.analysis import stratify as st
    from reasonscape.analysis import verbs
    from reasonscape.analysis.render import markdown, prepare_dir, to_json_text
    from reasonscape.identity import eval_id

    st.parse_targets(opts.targets)  # bad targets or keep-list fail before hours of testing
    keep_ids = st.read_keep(opts.keep) if opts.keep is not None else None
    if opts.output is not None:
        st.check_output(opts.output)
    if not Path(opts.config).is_file():
        raise InputError(f"--config {opts.config}: file not found")
    a, b = opts.a.load_names(), opts.b.load_names()
    if (a.template_name, a.sampler_name) == (b.template_name, b.sampler_name):
        raise InputError(f"conditions A and B are both template {a.template_name!r}, sampler {a.sampler_name!r}: "
                         "give B another --template-b or --sampler-b")
    workdir = prepare_dir(opts.workdir, "--workdir")
    folders: dict[str, Path | None] = {"a": None, "b": None}
    if not opts.skip_testing:
        from reasonscape.runner.run import RunOptions, run_experiment

        if not opts.apibase:
            raise InputError("--apibase is required to test (an http(s) URL, or sim://...); "
                             "--skip-testing works from what is already tested")
        for step, (key, cond) in enumerate((("a", a), ("b", b)), 1):
            _say(opts, f"[{step}/5] testing condition {key.upper()}: {cond.template_name} / {cond.sampler_name}")
            res = run_experiment(RunOptions(
                config=opts.config, template=cond.template, sampler=cond.sampler, model=opts.model,
                apibase=opts.apibase, apikey=opts.apikey, precision=opts.precision, seed=opts.run_seed,
                parallel=opts.parallel, cache=opts.cache if opts.cache is not None else workdir / CACHE_DIR,
                output=workdir / RESULTS_DIR, quiet=opts.quiet, **opts.runner))
            folders[key] = res.path
            _say(opts, f"      {res.path} ({'already complete' if res.reused else res.status})")
    else:
        _say(opts, "[1-2/5] testing skipped (--skip-testing)")
        for folder, status in _folders_status(workdir):
            if status != "complete":
                click.echo(f"warning: {folder}: status {status}: using the tests it holds so far", err=True)
    dataset = write_dataset(workdir, Path(opts.config), opts.model, [a, b])
    has_results = bool(list((workdir / RESULTS_DIR).glob("*/result-steps.ndjson*")))
    if has_results:
        from reasonscape.evaluate import evaluate_dataset

        _say(opts, "[3/5] evaluate")
        res = evaluate_dataset(dataset, progress=not opts.quiet, parallel=1)
        if res.exit_code != 0:
            raise RuntimeFailure(f"evaluate.py --dataset {dataset} reported errors (exit {res.exit_code}); fix them "
                                 "and re-run")
    elif not (workdir / DB_FILE).is_file():
        raise InputError(f"--skip-testing: {workdir} holds no result folders and no PointsDB: nothing was tested yet")
    else:
        _say(opts, f"[3/5] evaluate skipped: no result folders, using {workdir / DB_FILE}")
    ida = eval_id(opts.model, a.template_name, a.sampler_name)
    idb = eval_id(opts.model, b.template_name, b.sampler_name)
    _say(opts, f"[4/5] ablation {ida} (A) vs {idb} (B)")
    ab = verbs.ablation(dataset, ida, idb, group_by=opts.group_by, seed=opts.run_seed, items=True)
    if ab.summary["unpaired"]:
        click.echo(f"warning: {ab.summary['unpaired']:,} tests were answered under one condition only and are left "
                   "out: an adaptive precision level (targetci) stops each condition at its own round; a level "
                   "without targetci (e.g. count: 100, maxrounds: 1000) tests the same items under both", err=True)
    st.write_atomic(workdir / "ablation.md", [markdown(ab).encode()])
    st.write_atomic(workdir / "ablation.json", [to_json_text(ab.to_json()).encode() + b"\n"])
    _say(opts, "[5/5] stratify")
    result = st.finish(st.stratify(ab, opts.targets, keep=keep_ids, seed=opts.seed), opts.output, opts.allow_short)
    return WorkflowResult(folders, dataset, ab, result)


_CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.command(context_settings=_CTX)
@click.option("--config", required=True, type=click.Path(path_type=Path), help="Experiment config (items task).")
@click.option("--model", required=True, help="Model name (sent to the endpoint; part of both evals' identity).")
@click.option("--apibase", help="Endpoint URL or sim://... (required unless --skip-testing).")
@click.option("--apikey", envvar="OPENAI_API_KEY", show_envvar=True, help="API key (never written anywhere).")
@click.option("--template-a", required=True, type=click.Path(path_type=Path), help="Condition A template.")
@click.option("--sampler-a", type=click.Path(path_type=Path), help="Condition A sampler (default: --sampler).")
@click.option("--template-b", type=click.Path(path_type=Path), help="Condition B template (default: A's).")
@click.option("--sampler-b", type=click.Path(path_type=Path), help="Condition B sampler (default: --sampler).")
@click.option("--sampler", type=click.Path(path_type=Path), help="Sampler of both conditions unless -a/-b given.")
@click.option("--targets", required=True, metavar="B=N,...", help="Items per bucket, e.g. 2=150,3=150,4=100,5+=50.")
@click.option("--keep", type=click.Path(path_type=Path), help="Item ids kept first (one per line or JSONL id).")
@click.option("--workdir", required=True, type=click.Path(path_type=Path),
              help="Results, cache, dataset, PointsDB and ablation files live here; re-run to resume.")
@click.option("--output", type=click.Path(path_type=Path), help="Final item file (JSONL, written atomically).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1), help="Sampling seed.")
@click.option("--run-seed", default=42, show_default=True, type=click.IntRange(0, 2**63 - 1),
              help="Global seed of test generation (the runner's --seed).")
@click.option("--precision", help="Precision level of the config (default: its first).")
@click.option("--parallel", default=16, show_default=True, type=click.IntRange(1, 4096), help="Concurrent requests.")
@click.option("--cache", type=click.Path(path_type=Path), help="Response cache [default: <workdir>/cache].")
@click.option("--group-by", help="Bucket dimension [default: params.bucket when present, else base_task].")
@click.option("--skip-testing", is_flag=True, help="Do not run the runner: evaluate and select from what is tested.")
@click.option("--allow-short", is_flag=True, help="Write the item file even when a bucket misses its target.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def command(config: Path, model: str, apibase: str | None, apikey: str | None, template_a: Path,
            sampler_a: Path | None, template_b: Path | None, sampler_b: Path | None, sampler: Path | None,
            targets: str, keep: Path | None, workdir: Path, output: Path | None, seed: int, run_seed: int,
            precision: str | None, parallel: int, cache: Path | None, group_by: str | None, skip_testing: bool,
            allow_short: bool, quiet: bool) -> None:
    """Test items under two conditions, evaluate, classify and select (see docs/items.md). Resumable."""
    from reasonscape.analysis import stratify as st
    from reasonscape.analysis.dimensions import check_dimension
    from reasonscape.analysis.render import emit
    from reasonscape.cli.common import one_line

    sa, sb = sampler_a or sampler, sampler_b or sampler
    if sa is None or sb is None:
        raise InputError("give --sampler (both conditions) or --sampler-a and --sampler-b")
    if group_by is not None:
        check_dimension(group_by, "--group-by")
    opts = WorkflowOptions(config=config, model=model, a=Condition(template_a, sa),
                           b=Condition(template_b or template_a, sb), targets=targets, workdir=workdir,
                           output=output, apibase=apibase, apikey=apikey, keep=keep, seed=seed, run_seed=run_seed,
                           precision=precision, parallel=parallel, cache=cache, group_by=group_by,
                           skip_testing=skip_testing, allow_short=allow_short, quiet=quiet)
    res = run_workflow(opts)
    for line in st.warnings(res.stratify):
        click.echo(one_line(line), err=True)
    emit(res.stratify, "markdown")
    if not res.stratify.met and not allow_short:
        raise RuntimeFailure(st.unmet_message(res.stratify, output))


def main(args: list[str] | None = None) -> None:
    from reasonscape.cli.common import run_command

    run_command(command, args)


if __name__ == "__main__":
    main(sys.argv[1:])
