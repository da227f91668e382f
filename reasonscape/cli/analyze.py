"""analyze.py: the analysis verbs over a dataset's PointsDB (option parsing and rendering only).

Every verb is `reasonscape.analysis.verbs.<verb>(dataset, ...)` plus the one renderer; the options
shared by verbs come from one decorator (reasonscape.analysis.options).
"""

from __future__ import annotations

from typing import Any

import click

from reasonscape.analysis.options import analysis_options
from reasonscape.cli.common import run_command

DATASET = click.argument("dataset", metavar="DATASET")
_CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _emit(result: Any, fmt: str, output_dir: str | None = None, width: int | None = None,
          output: str | None = None) -> None:
    from reasonscape.analysis.render import emit

    emit(result, fmt, output_dir, width, output)


@click.group(context_settings=_CTX)
def cli() -> None:
    """Analyse a dataset: python analyze.py <verb> data/<name>.json [options].

    DATASET is a dataset config (data/<name>.json) or a PointsDB file. Tables go to stdout (or to
    files with --output-dir); PNGs are written to --output-dir (default .) and their paths printed.
    """


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--search", help="Regex on model name or label (case-insensitive).")
@click.option("--facets", "facets", help="Comma-separated key:value pairs, all required (e.g. size:small,arch:moe).")
@click.option("--groups", "groups", help="Alias of --facets.")
@analysis_options(formats=("table", "markdown", "json"), default_format="table")
def evals(dataset: str, search: str | None, facets: str | None, groups: str | None, filters: Any, fmt: str,
          output_dir: str | None) -> None:
    """List evaluations (eval_id, label, model, template, sampler, groups, hf_id, counts)."""
    from reasonscape.analysis import verbs
    from reasonscape.errors import InputError

    if facets is not None and groups is not None:
        raise InputError("give --facets or its alias --groups, not both")
    _emit(verbs.evals(dataset, search=search, facets=facets if facets is not None else groups, filters=filters),
          fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--search", help="Regex on task name (case-insensitive).")
@analysis_options()
def tasks(dataset: str, search: str | None, filters: Any, fmt: str, output_dir: str | None) -> None:
    """List base tasks: point/eval/test counts and the views their config defines."""
    from reasonscape.analysis import verbs

    _emit(verbs.tasks(dataset, search=search, filters=filters), fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@analysis_options(group_by="base_task")
def tokens(dataset: str, filters: Any, group_by: str, fmt: str, output_dir: str | None) -> None:
    """Token use per test for every (eval, group): prompt, completion, and completion by outcome."""
    from reasonscape.analysis import verbs

    _emit(verbs.tokens(dataset, filters=filters, group_by=group_by), fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--sort", multiple=True, metavar="PARAM", help="Sort by this params key (no params. prefix); repeatable.")
@analysis_options(split_by="base_task", mode="C_P", formats=("markdown", "md", "json"))
def points(dataset: str, sort: tuple[str, ...], filters: Any, split_by: str | None, mode: str, fmt: str,
           output_dir: str | None) -> None:
    """Per-point data with point ids (the input of probe.py), one file per --split-by value."""
    from reasonscape.analysis import verbs

    _emit(verbs.points(dataset, filters=filters, split_by=split_by, sort=sort, mode=mode),
          "markdown" if fmt == "md" else fmt, output_dir)


@cli.command(context_settings=_CTX)
@click.argument("dataset", metavar="[DATASET]", required=False)
@click.option("--hf-id", "hf_ids", multiple=True, metavar="ORG/NAME",
              help="Hugging Face model id (repeatable); skips the dataset.")
@click.option("--eval-id", "eval_ids", multiple=True, metavar="HASH", help="Only this eval (repeatable).")
@analysis_options(formats=("markdown", "json"), output_dir=False)
@click.option("--output-dir", required=True, type=click.Path(file_okay=False), help="Cache directory.")
def modelinfo(dataset: str | None, hf_ids: tuple[str, ...], eval_ids: tuple[str, ...], filters: Any, fmt: str,
              output_dir: str) -> None:
    """Download README, *config.json and recipe.yaml per model from the Hugging Face Hub, plus MODELINFO.md."""
    from reasonscape.analysis import verbs
    from reasonscape.errors import InputError

    if hf_ids and (dataset or eval_ids or filters):
        raise InputError("--hf-id skips the dataset: give either --hf-id or DATASET [--filters/--eval-id]")
    if not hf_ids and not dataset:
        raise InputError("give DATASET (data/<name>.json) or --hf-id ORG/NAME")
    result = verbs.modelinfo(dataset, output_dir=output_dir, hf_ids=hf_ids, filters=filters, eval_ids=eval_ids)
    if fmt == "json":
        _emit(result, "json")
    else:
        click.echo(str(result.options["output_dir"]).rstrip("/") + "/MODELINFO.md")


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--sort", default="score", show_default=True, type=click.Choice(("score", "ratio")),
              help="score (ReasonScore) or ratio (score/token).")
@click.option("--top", type=click.IntRange(min=1, max=10**6), help="Only the top N by rank.")
@analysis_options(group_by="base_task", mode="C_P", formats=("markdown", "json", "png"), width=1400)
def scores(dataset: str, sort: str, top: int | None, filters: Any, group_by: str, mode: str, fmt: str,
           width: int, output_dir: str | None) -> None:
    """ReasonScore ranking with bootstrap CI and score/token."""
    from reasonscape.analysis import verbs

    _emit(verbs.scores(dataset, filters=filters, group_by=group_by, sort=sort, top=top, mode=mode), fmt,
          output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@analysis_options(group_by="eval_id", facet_by="base_task", split_by=None, mode="C_P",
                  formats=("markdown", "json", "png"), width=1200)
def cluster(dataset: str, filters: Any, group_by: str, facet_by: str | None, split_by: str | None, mode: str,
            fmt: str, width: int, output_dir: str | None) -> None:
    """Clusters of statistically indistinguishable series per facet (confidence-interval overlap)."""
    from reasonscape.analysis import verbs

    _emit(verbs.cluster(dataset, filters=filters, group_by=group_by, facet_by=facet_by, split_by=split_by,
                        mode=mode), fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@analysis_options(group_by="eval_id", facet_by="base_task", mode="C_P")
def rank(dataset: str, filters: Any, group_by: str, facet_by: str | None, mode: str, fmt: str,
         output_dir: str | None) -> None:
    """Rank across facets: sum of each series' best cluster position (missing facet = invalid)."""
    from reasonscape.analysis import verbs

    _emit(verbs.rank(dataset, filters=filters, group_by=group_by, facet_by=facet_by, mode=mode), fmt, output_dir)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--sort", default="expected-wins", show_default=True,
              type=click.Choice(("expected-wins", "bradley-terry")), help="Ranking order.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file (instead of --output-dir).")
@analysis_options(group_by="base_task", mode="C_P", modes=("C_P", "C_I"), formats=("markdown", "json", "png"),
                  width=1200)
def pairwise(dataset: str, sort: str, output: str | None, filters: Any, group_by: str, mode: str, fmt: str,
             width: int, output_dir: str | None) -> None:
    """Head-to-head win probabilities per group and a Bradley-Terry ranking."""
    from reasonscape.analysis import verbs
    from reasonscape.errors import InputError

    if output and output_dir:
        raise InputError("give --output FILE or --output-dir DIR, not both")
    _emit(verbs.pairwise(dataset, filters=filters, group_by=group_by, mode=mode, sort=sort), fmt, output_dir,
          width, output)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--compare-modes", is_flag=True, help="All six estimators side by side.")
@click.option("--raw-counters", is_flag=True, help="Add n_u, n_t, n_e, g.")
@click.option("--tokens", "tokens_", is_flag=True, help="Add token average columns.")
@analysis_options(group_by="eval_id", facet_by="base_task", split_by=None, mode="C_P")
def aggregate(dataset: str, compare_modes: bool, raw_counters: bool, tokens_: bool, filters: Any, group_by: str,
              facet_by: str | None, split_by: str | None, mode: str, fmt: str, output_dir: str | None) -> None:
    """Pooled statistics per (split, facet, series): intervals, raw counters, tokens."""
    from reasonscape.analysis import verbs

    _emit(verbs.aggregate(dataset, filters=filters, group_by=group_by, facet_by=facet_by, split_by=split_by,
                          mode=mode, compare_modes=compare_modes, raw=raw_counters, tokens=tokens_), fmt, output_dir)


# -- profile verbs (spiderweb, surface, compression, hazard, capacity) ---------------------------------

@cli.command(context_settings=_CTX)
@DATASET
@click.option("--height", default=700, show_default=True, type=click.IntRange(300, 8000), help="PNG height in pixels.")
@analysis_options(group_by="base_task", mode="C_P", formats=("webpng", "barpng", "markdown", "json"),
                  default_format="webpng", width=1000)
def spiderweb(dataset: str, height: int, filters: Any, group_by: str, mode: str, fmt: str, width: int,
              output_dir: str | None) -> None:
    """Per eval: accuracy by --group-by as a radar (webpng) or bars (barpng), truncation and tokens."""
    from reasonscape.analysis import verbs

    style = fmt if fmt in ("webpng", "barpng") else "webpng"
    result = verbs.spiderweb(dataset, filters=filters, group_by=group_by, mode=mode, style=style, height=height)
    _emit(result, "png" if fmt.endswith("png") else fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--view", "views", multiple=True, metavar="VIEW", help="Only this 2-dim view (repeatable).")
@click.option("--width", type=click.IntRange(300, 8000), help="PNG width in pixels (default: 330 per eval column).")
@analysis_options(split_by="base_task", mode="C_P", formats=("png", "markdown", "json"), default_format="png")
def surface(dataset: str, views: tuple[str, ...], width: int | None, filters: Any, split_by: str | None, mode: str,
            fmt: str, output_dir: str | None) -> None:
    """3-D accuracy surfaces over every 2-dim view (rows = views, columns = evals), lower bound beneath."""
    from reasonscape.analysis import verbs

    result = verbs.surface(dataset, filters=filters, views=views, split_by=split_by, mode=mode)
    if width is None and fmt == "png":
        from reasonscape.plots.figures import auto_width

        width = auto_width(result, minimum=800)
    _emit(result, fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@analysis_options(group_by="manifold.id", facet_by="eval_id", split_by="base_task",
                  formats=("png", "markdown", "json"), default_format="png", width=1200)
def compression(dataset: str, filters: Any, group_by: str, facet_by: str | None, split_by: str | None, fmt: str,
                width: int, output_dir: str | None) -> None:
    """Answers' compression ratio vs length, correct / incorrect / truncated (from the stored sample)."""
    from reasonscape.analysis import verbs

    _emit(verbs.compression(dataset, filters=filters, split_by=split_by, facet_by=facet_by, group_by=group_by),
          fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--split-by", "split_by", multiple=True, default=("base_task", "eval_id"), show_default=True,
              metavar="DIM", help="One file per combination of these dimensions' values (repeatable; none = one file).")
@click.option("--bucket-size", default=256, show_default=True, type=click.IntRange(1, 1 << 20),
              help="Token bucket size (a multiple of the stored 256).")
@analysis_options(formats=("png", "markdown", "json"), default_format="png", width=1200)
def hazard(dataset: str, split_by: tuple[str, ...], bucket_size: int, filters: Any, fmt: str, width: int,
           output_dir: str | None) -> None:
    """Survival and hazard of failure over completion-token buckets (from the stored histograms)."""
    from reasonscape.analysis import verbs

    _emit(verbs.hazard(dataset, filters=filters, split_by=split_by, bucket_size=bucket_size), fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@click.option("--frontier", is_flag=False, flag_value="eval_id", default=None, metavar="[GROUP_BY]",
              help="Accuracy vs num_rows with a logistic fit; the 50% point is the capacity (series: GROUP_BY, "
                   "default eval_id).")
@click.option("--peak", is_flag=False, flag_value="eval_id", default=None, metavar="[GROUP_BY]",
              help="Effective capacity (accuracy x rows) vs target_tokens (series: GROUP_BY, default eval_id).")
@analysis_options(facet_by="none", mode="C_P", formats=("markdown", "json", "png"), width=1200)
def capacity(dataset: str, frontier: str | None, peak: str | None, filters: Any, facet_by: str | None, mode: str,
             fmt: str, width: int, output_dir: str | None) -> None:
    """Capacity frontier (--frontier) or peak effective capacity (--peak); mutually exclusive."""
    from reasonscape.analysis import verbs
    from reasonscape.errors import InputError

    if frontier is not None and peak is not None:
        raise InputError("--frontier and --peak are mutually exclusive")
    if frontier is None and peak is None:
        raise InputError("capacity: give --frontier [GROUP_BY] or --peak [GROUP_BY]")
    _emit(verbs.capacity(dataset, filters=filters, frontier=frontier, peak=peak, facet_by=facet_by, mode=mode),
          fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="Paired bootstrap replicates for the ReasonScore difference CI (0: none).")
@analysis_options(group_by="base_task", mode="C_P", formats=("markdown", "json", "png"), width=1200)
def compare(dataset: str, a: str, b: str, bootstrap: int, filters: Any, group_by: str, mode: str, fmt: str,
            width: int, output_dir: str | None) -> None:
    """Two evals (eval_ids A and B) test by test: paired outcomes, McNemar per group, ReasonScore difference."""
    from reasonscape.analysis import verbs

    if fmt == "png":
        import reasonscape.plots.compare  # noqa: F401 - registers the compare figure
    _emit(verbs.compare(dataset, a, b, filters=filters, group_by=group_by, mode=mode, bootstrap=bootstrap), fmt,
          output_dir, width)


# -- item verbs (ablation, stratify) -------------------------------------------------------------------

def _group_by_auto(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from reasonscape.analysis.dimensions import check_dimension

    return None if value is None else check_dimension(value, "--group-by")


def _condition_options(fn: Any) -> Any:
    """--a/--b, --group-by, --run-seed and --no-verify: what names an ablation's two conditions and items."""
    for opt in reversed((
        click.option("--a", "a", required=True, metavar="EVAL",
                     help="Condition A (e.g. with reasoning): an eval_id, or key=value pairs over eval_id, model, "
                          "template, sampler, label (e.g. template=zerocot-nosys) naming one eval."),
        click.option("--b", "b", required=True, metavar="EVAL",
                     help="Condition B (e.g. reasoning ablated), as --a; the same model as A."),
        click.option("--group-by", default=None, callback=_group_by_auto, metavar="DIM",
                     help="Buckets (a dimension, not eval_id/template/sampler) [default: params.bucket when the "
                          "points have it, else base_task]."),
        click.option("--run-seed", type=click.IntRange(0, 2**63 - 1), metavar="INT",
                     help="Global seed the runs used [default: read from the result files, else 42]."),
        click.option("--no-verify", is_flag=True,
                     help="Do not check the paired questions against the result files."),
    )):
        fn = opt(fn)
    return fn


@cli.command(context_settings=_CTX)
@DATASET
@_condition_options
@click.option("--items", "items", is_flag=True, help="Add one row per item (id, bucket, class, ...) to the output.")
@analysis_options(formats=("markdown", "json", "png"), width=1200)
def ablation(dataset: str, a: str, b: str, group_by: str | None, run_seed: int | None, no_verify: bool,
             items: bool, filters: Any, fmt: str, width: int, output_dir: str | None) -> None:
    """One model's items under two conditions: needs-reasoning / both-right / both-wrong / b-only per bucket,
    McNemar per bucket."""
    from reasonscape.analysis import verbs

    if fmt == "png":
        import reasonscape.plots.ablation  # noqa: F401 - registers the ablation figure
    _emit(verbs.ablation(dataset, a, b, filters=filters, group_by=group_by, seed=run_seed, items=items,
                         verify=not no_verify), fmt, output_dir, width)


@cli.command(context_settings=_CTX)
@DATASET
@_condition_options
@click.option("--targets", required=True, metavar="B=N,...",
              help="Items per bucket, met exactly, e.g. 2=150,3=150,4=100,5+=50 (N+ and A-B match numeric buckets).")
@click.option("--keep", type=click.Path(), metavar="FILE",
              help="Item ids kept first, marked existing: one per line, or JSONL with an id field.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
              help="Seed of the deterministic sampling of new items.")
@click.option("--output", type=click.Path(), metavar="FILE.jsonl", help="Write the final item file (atomically).")
@click.option("--allow-short", is_flag=True, help="Write the set even when a bucket misses its target (exit 0).")
@analysis_options(formats=("markdown", "json"), output_dir=False)
def stratify(dataset: str, a: str, b: str, group_by: str | None, run_seed: int | None, no_verify: bool,
             targets: str, keep: str | None, seed: int, output: str | None, allow_short: bool, filters: Any,
             fmt: str) -> None:
    """Select needs-reasoning items to meet per-bucket targets exactly, keep-list first; prints the table.

    Exit 1 (nothing written) when a bucket cannot be met, unless --allow-short."""
    from reasonscape.analysis import stratify as st
    from reasonscape.analysis import verbs
    from reasonscape.cli.common import one_line
    from reasonscape.errors import RuntimeFailure

    st.parse_targets(targets)  # a malformed --targets, --keep or --output fails before any data is read
    keep_ids = st.read_keep(keep) if keep is not None else None
    if output is not None:
        st.check_output(output)
    result = verbs.stratify(dataset, a, b, st.parse_targets(targets), keep=keep_ids, seed=seed, output=output,
                            allow_short=allow_short, filters=filters, group_by=group_by, run_seed=run_seed,
                            verify=not no_verify)
    for line in st.warnings(result):
        click.echo(one_line(line), err=True)
    _emit(result, fmt)
    if not result.met and not allow_short:
        raise RuntimeFailure(st.unmet_message(result, output))


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
