"""Per-verb matplotlib figures (sizes in pixels at DPI; widths are exact, heights grow with rows)."""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reasonscape.plots import DPI, MAX_HEIGHT  # noqa: E402

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _figure(width: int, height: float, constrained: bool = True) -> Figure:
    h = int(min(max(height, 300), MAX_HEIGHT))
    return Figure(figsize=(width / DPI, h / DPI), dpi=DPI, layout="constrained" if constrained else None)


def _margins(fig: Figure, labels: list[str], width: int, fontsize: float, top_px: int = 40,
             bottom_px: int = 55, right_px: int = 25) -> None:
    """Fixed margins from the longest tick label: one draw instead of constrained layout's two."""
    longest = max((len(lab) for lab in labels), default=4)
    left_px = min(int(longest * fontsize * 0.62) + 75, width // 2)
    h = fig.get_figheight() * DPI
    fig.subplots_adjust(left=left_px / width, right=1 - right_px / width, top=1 - top_px / h, bottom=bottom_px / h)


def _short(text: Any, n: int = 40) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def scores_figure(result: Any, width: int) -> Figure:
    """Ranked horizontal bars of ReasonScore with bootstrap-CI whiskers, best on top."""
    f = result.frame
    n = len(f)
    fig = _figure(width, 110 + 24 * max(n, 1), constrained=False)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    ticks = [_short(f"{r} · {lab}", 50) for r, lab in zip(f["rank"], f["label"], strict=True)]
    _margins(fig, ticks, width, 10)
    if n:
        score = f["score"].to_numpy(float)
        err = np.vstack([score - f["ci_low"].to_numpy(float), f["ci_high"].to_numpy(float) - score])
        ax.barh(y, score, color=PALETTE[0], alpha=0.85, label="ReasonScore")
        ax.errorbar(score, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="black", capsize=3,
                    label="95% bootstrap CI")
        if n <= 40:  # beyond that the axis is enough and 100 more text artists cost a third of the draw
            for yi, s, hi in zip(y, score, f["ci_high"].to_numpy(float), strict=True):
                ax.text(max(s, hi) + 10, yi, f"{s:.0f}", va="center", fontsize=8)
        ax.set_yticks(y, ticks)
        ax.set_ylim(-0.7, n - 0.3)
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    ax.set_xlim(0, 1080)
    ax.set_xlabel("ReasonScore (10–1000, higher is better)")
    ax.set_ylabel("evaluation (rank · label)")
    opts = result.options
    ax.set_title(f"ReasonScore by {opts.get('group_by')} (mode {opts.get('mode')})")
    ax.grid(axis="x", alpha=0.3)
    return fig


def cluster_figure(result: Any, width: int) -> Figure:
    """One panel per facet: each series' interval as a whisker, coloured by its best cluster."""
    facets = result.facets
    k = max(len(facets), 1)
    ncols = 1 if k == 1 else (2 if width < 1600 or k <= 4 else 3)
    nrows = -(-k // ncols)
    rows = max((len(f.series) for f in facets), default=1)
    dense = rows > 30
    row_px, fs = (12, 6) if dense else (22, 8)
    fig = _figure(width, nrows * (90 + row_px * rows) + 80, constrained=not dense)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if dense:  # fixed margins: constrained layout would measure thousands of tick labels twice
        longest = max((min(len(str(lab)), 32) for f in facets for lab in f.series["label"]), default=4)
        h = fig.get_figheight() * DPI
        fig.subplots_adjust(left=(longest * fs * 0.62 + 20) / width, right=1 - 20 / width, top=1 - 50 / h,
                            bottom=110 / h, wspace=(longest * fs * 0.62 + 30) / (width / ncols), hspace=90 / (h / nrows))
    opts = result.options
    used: dict[int, Any] = {}
    for ax, f in zip(axes.flat, facets, strict=False):
        s = f.series
        y = np.arange(len(s))[::-1]
        best = np.array([min(c) for c in s["clusters"]], dtype=int)
        colour = (best - 1) % len(PALETTE)
        for c in np.unique(colour):  # one artist per colour, not one per series
            sel = colour == c
            h = ax.errorbar(s["center"].to_numpy(float)[sel], y[sel], xerr=s["margin"].to_numpy(float)[sel], fmt="o",
                            color=PALETTE[c], capsize=2 if dense else 3, markersize=3 if dense else 4)
            used.setdefault(int(c) + 1, h)
        ax.set_yticks(y, [_short(lab, 32) for lab in s["label"]], fontsize=fs)
        ax.set_ylim(-0.7, max(len(s), 1) - 0.3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel(f"accuracy at {opts.get('mode')} (95% interval)")
        title = "all points" if f.facet is None else f"{opts.get('facet_by')} = {f.facet}"
        if f.split is not None:
            title = f"{opts.get('split_by')} = {f.split} / {title}"
        ax.set_title(_short(title, 60), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(facets):]:
        ax.set_visible(False)
    if not facets:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no data", ha="center", transform=axes[0, 0].transAxes)
    if used:
        order = sorted(used)[:10]
        many = max(max(min(c) for c in f.series["clusters"]) for f in facets if len(f.series)) > len(PALETTE)
        names = [f"cluster {c}" + (f", {c + len(PALETTE)}, ..." if many else "") for c in order]
        fig.legend([used[c] for c in order], names, loc="lower center" if dense else "outside lower center",
                   ncols=min(len(order), 5), fontsize=8, title="best cluster (1 = top)")
    fig.suptitle(f"Clusters of statistically indistinguishable {opts.get('group_by')} values",
                 **({"y": 1 - 12 / (fig.get_figheight() * DPI), "va": "top"} if dense else {}))
    return fig


def pairwise_figure(result: Any, width: int) -> Figure:
    """Heatmap of P(row beats column), rows and columns in rank order."""
    n = len(result.series)
    labels = [_short(f"{r} · {lab}", 36) for r, lab in zip(result.series["rank"], result.series["label"], strict=True)]
    fig = _figure(width, 220 + 40 * max(n, 1) if n <= 40 else 220 + 16 * n, constrained=n <= 30)
    ax = fig.add_subplot()
    if n > 30:
        _margins(fig, labels, width, 5, top_px=60, right_px=140)
    m = np.ma.masked_invalid(result.matrix if n else np.zeros((1, 1)))
    im = ax.imshow(m, cmap="RdBu", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(im, ax=ax, label="P(row beats column)", shrink=0.8, fraction=0.04, pad=0.02)
    fs = 8 if n <= 30 else 5
    ax.set_xticks(range(n), [str(i + 1) for i in range(n)], fontsize=fs)
    ax.set_yticks(range(n), labels, fontsize=fs)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = result.matrix[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(v - 0.5) > 0.3 else "black")
    ax.set_xlabel("opponent (rank)")
    ax.set_ylabel("evaluation (rank · label)")
    opts = result.options
    ax.set_title("\n".join(textwrap.wrap(f"Head-to-head win probability over {len(result.groups)} "
                                         f"{opts.get('group_by')} groups (mode {opts.get('mode')}, sorted by "
                                         f"{opts.get('sort')})", 90)))
    return fig


BUILDERS = {"scores": scores_figure, "cluster": cluster_figure, "pairwise": pairwise_figure}
