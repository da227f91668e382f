"""Every analyze.py verb for notebooks, with one import: each takes a dataset config path, a PointsDB
file or an open PointsDB, and returns the verb's result (a dataclass holding frames; `.to_json()`
gives the documented JSON, `reasonscape.analysis.render` renders it).

    from reasonscape.analysis import verbs as rs
    rs.scores("data/demo.json").frame
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reasonscape.analysis import aggregate as _aggregate
from reasonscape.analysis import cluster as _cluster
from reasonscape.analysis import compare as _compare
from reasonscape.analysis import evals as _evals
from reasonscape.analysis import pairwise as _pairwise
from reasonscape.analysis import points as _points
from reasonscape.analysis import reasonscore as _reasonscore
from reasonscape.analysis import tokens as _tokens
from reasonscape.analysis.query import open_db
from reasonscape.pointsdb import PointsDB

Dataset = str | Path | PointsDB
T = TypeVar("T")


def _with_db(dataset: Dataset, fn: Callable[..., T], *args: Any, config: bool = False, **kw: Any) -> T:
    db, cfg = open_db(dataset)
    try:
        return fn(db, *args, config=cfg, **kw) if config else fn(db, *args, **kw)
    finally:
        if db is not dataset:
            db.close()


def evals(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _evals.evals, **kw)


def tasks(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _evals.tasks, config=True, **kw)


def tokens(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _tokens.tokens, **kw)


def points(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _points.points, **kw)


def scores(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _reasonscore.scores, **kw)


def cluster(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _cluster.cluster, **kw)


def rank(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _cluster.rank, **kw)


def pairwise(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _pairwise.pairwise, **kw)


def aggregate(dataset: Dataset, **kw: Any) -> Any:
    return _with_db(dataset, _aggregate.aggregate, **kw)


def spiderweb(dataset: Dataset, **kw: Any) -> Any:
    from reasonscape.analysis import spiderweb as _m

    return _with_db(dataset, _m.spiderweb, **kw)


def surface(dataset: Dataset, **kw: Any) -> Any:
    from reasonscape.analysis import surface as _m

    return _with_db(dataset, _m.surface, config=True, **kw)


def compression(dataset: Dataset, **kw: Any) -> Any:
    from reasonscape.analysis import compression as _m

    return _with_db(dataset, _m.compression, **kw)


def hazard(dataset: Dataset, **kw: Any) -> Any:
    from reasonscape.analysis import hazard as _m

    return _with_db(dataset, _m.hazard, **kw)


def capacity(dataset: Dataset, **kw: Any) -> Any:
    from reasonscape.analysis import capacity as _m

    return _with_db(dataset, _m.capacity, **kw)


def compare(dataset: Dataset, a: str, b: str, **kw: Any) -> Any:
    """Paired, test-by-test comparison of evals `a` and `b` (McNemar per group, ReasonScore difference)."""
    return _with_db(dataset, _compare.compare, a, b, **kw)


def modelinfo(dataset: Dataset | None = None, output_dir: str | Path = "modelinfo", hf_ids: tuple[str, ...] = (),
              filters: Any = None, eval_ids: tuple[str, ...] = ()) -> Any:
    """Fetch model metadata for the dataset's evals (or only `hf_ids`, without a dataset)."""
    from reasonscape.analysis import modelinfo as _mi

    without: list[str] = []
    if hf_ids:
        targets = {_mi.check_hf_id(h): [] for h in hf_ids}
    else:
        targets, without = _with_db(dataset, _mi.targets_from_db, filters, eval_ids)
    result = _mi.fetch(targets, output_dir, without)
    _mi.write_summary(result)
    return result


def ablation(dataset: Dataset, a: str, b: str, **kw: Any) -> Any:
    """One model's items under two conditions (evals `a`, `b`), classified per item, McNemar per bucket."""
    from reasonscape.analysis import ablation as _m

    return _with_db(dataset, _m.ablation, a, b, config=True, **kw)


def stratify(dataset: Dataset, a: str, b: str, targets: Any, keep: Any = None, seed: int = 0,
             output: str | Path | None = None, allow_short: bool = False, run_seed: int | None = None,
             **kw: Any) -> Any:
    """The ablation's needs-reasoning items stratified to per-bucket targets (keep-list first, sampled by
    `seed`), written to `output` (JSONL, atomically) when every target is met or `allow_short`.
    `run_seed` is the runs' global seed (ablation's `seed`); other keywords go to `ablation`."""
    from reasonscape.analysis import stratify as _m

    result = _m.stratify(ablation(dataset, a, b, seed=run_seed, **kw), targets, keep=keep, seed=seed)
    return _m.finish(result, output, allow_short)
