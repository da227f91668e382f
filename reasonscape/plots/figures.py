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


# -- profile verbs (spiderweb, surface, compression, hazard, capacity) and probe.py fft ----------------

#: Okabe-Ito: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
HAZARD_MIN_AT_RISK = 10
OUTCOME_STYLE = {"correct": ("#0072B2", "-"), "incorrect": ("#D55E00", "--"), "invalid": ("#CC79A7", "-."),
                 "truncated": ("#E69F00", ":")}


def _no_data(ax: Any, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def auto_width(result: Any, per_panel: int = 330, minimum: int = 1000) -> int:
    """A PNG width giving every eval column about `per_panel` pixels (surface, fft without --width)."""
    cols = [len(set(part.frame["eval_id"])) for _, part in result.parts() if len(part.frame)]
    return int(min(max(per_panel * max(cols, default=1), minimum), 8000))


def _panel_title(label: Any, detail: str, panel_px: float, fontsize: float = 8) -> str:
    """A panel title wrapped to the panel's width (long eval labels would run into the next panel)."""
    chars = max(int(panel_px / (fontsize * 0.62)), 12)
    return "\n".join(textwrap.wrap(str(label), chars)[:2] + [_short(detail, chars)])


def _height(result: Any, default: int) -> int:
    h = result.options.get("height") or default
    return int(min(max(h, 300), MAX_HEIGHT))


def spiderweb_figure(result: Any, width: int) -> Figure:
    """One eval: accuracy per group as a radar (webpng) or bars (barpng) with the interval shaded,
    the truncation rate overlaid, and mean completion tokens as bars beside it."""
    f = result.frame
    opts = result.options
    height = _height(result, 700)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    label = f["label"].iat[0] if len(f) else "no data"
    groups = [_short(g, 24) for g in f["group"]] if len(f) else []
    n = len(groups)
    gs = fig.add_gridspec(1, 2, width_ratios=[1.6, 1])
    if opts.get("style") == "barpng" or n < 3:  # a radar of one or two spokes is not a shape: bars
        ax = fig.add_subplot(gs[0, 0])
        x = np.arange(n)
        if n:
            err = np.vstack([f["center"] - f["low"], f["high"] - f["center"]]).clip(0)
            ax.bar(x, f["center"], color=OKABE_ITO[0], alpha=0.85, label=f"accuracy ({opts.get('mode')})")
            ax.errorbar(x, f["center"], yerr=err, fmt="none", ecolor="black", capsize=3, label="95% interval")
            ax.plot(x, f["truncation"], "D", color=OKABE_ITO[3], label="truncation rate", markersize=6)
            ax.set_xticks(x, groups, rotation=30 if n > 5 else 0, ha="right" if n > 5 else "center")
        else:
            _no_data(ax)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share of tests (0–1)")
        ax.set_xlabel(opts.get("group_by"))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax = fig.add_subplot(gs[0, 0], projection="polar")
        if n:
            theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
            closed = np.append(theta, theta[0])

            def loop(col: str) -> np.ndarray:
                v = f[col].to_numpy(float)
                return np.append(v, v[0])

            ax.fill_between(closed, loop("low"), loop("high"), color=OKABE_ITO[0], alpha=0.25, label="95% interval")
            ax.plot(closed, loop("center"), "-o", color=OKABE_ITO[0], label=f"accuracy ({opts.get('mode')})",
                    markersize=4)
            ax.plot(closed, loop("truncation"), "--", color=OKABE_ITO[3], label="truncation rate")
            ax.set_xticks(theta, groups, fontsize=9)
            ax.set_ylim(0, 1)
            ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", "1"], fontsize=7)
            ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.12), fontsize=8)
        else:
            _no_data(ax)
    tax = fig.add_subplot(gs[0, 1])
    if n:
        y = np.arange(n)[::-1]
        tax.barh(y, f["completion_tokens"], color=OKABE_ITO[2], alpha=0.85)
        tax.set_yticks(y, groups, fontsize=9)
        for yi, v in zip(y, f["completion_tokens"], strict=True):
            if np.isfinite(v):
                tax.text(v, yi, f" {v:,.0f}", va="center", fontsize=8)
        tax.margins(x=0.25)
    else:
        _no_data(tax)
    tax.set_xlabel("mean completion tokens per test")
    tax.set_title("Token cost", fontsize=10)
    tax.grid(axis="x", alpha=0.3)
    bars = " (bars: fewer than 3 groups)" if opts.get("style") != "barpng" and n < 3 else ""
    fig.suptitle(f"{_short(label, 70)}: accuracy by {opts.get('group_by')}{bars}")
    return fig


def _axis(values: list[Any]) -> tuple[list[Any], dict[Any, int]]:
    from reasonscape.analysis.dimensions import natural_key

    uniq = sorted(set(values), key=natural_key)
    return uniq, {v: i for i, v in enumerate(uniq)}


def surface_figure(result: Any, width: int) -> Figure:
    """Rows = views, columns = evals: accuracy over the view's two axes as a 3-D surface (colour =
    accuracy), with the lower bound of the interval as a grey wireframe beneath."""
    from matplotlib import cm
    from matplotlib.lines import Line2D

    from reasonscape.analysis.surface import MAX_PANELS
    from reasonscape.errors import InputError

    f = result.frame
    views = list(dict.fromkeys(zip(f["task"], f["view"], strict=True))) if len(f) else []
    evals = list(dict.fromkeys(zip(f["eval_id"], f["label"], strict=True))) if len(f) else []
    if len(views) * len(evals) > MAX_PANELS:
        raise InputError(f"surface: {len(views)} views × {len(evals)} evals is more than {MAX_PANELS} panels in one "
                         "PNG; narrow with --filters or --view, or use --split-by eval_id")
    nr, nc = max(len(views), 1), max(len(evals), 1)
    cell = (width - 90) / nc
    # a 3-D panel keeps its aspect: taller than ~420 px only adds blank space (and PNG encoding time)
    panel_h, gap = min(cell * 0.85, 420), 70  # gap: the panel title and the axis labels of the row above
    fig = _figure(width, int(nr * (panel_h + gap) + 150), constrained=False)  # fixed margins: 3-D layout is costly
    h = fig.get_figheight() * DPI
    fig.subplots_adjust(left=45 / width, right=1 - 95 / width, bottom=60 / h, top=1 - 100 / h, wspace=0.15,
                        hspace=gap / panel_h)
    mode = result.options.get("mode")
    norm = matplotlib.colors.Normalize(0, 1)
    for r, (task, view) in enumerate(views or [(None, None)]):
        for c, (e, lab) in enumerate(evals or [(None, None)]):
            ax = fig.add_subplot(nr, nc, r * nc + c + 1, projection="3d")
            sel = f[(f["task"] == task) & (f["view"] == view) & (f["eval_id"] == e)] if len(f) else f
            if not len(sel):
                ax.set_title("no data", fontsize=9)
                continue
            xs, xi = _axis(list(sel["x"]))
            ys, yi = _axis(list(sel["y"]))
            z = np.full((len(ys), len(xs)), np.nan)
            lo = np.full_like(z, np.nan)
            for row in sel.itertuples(index=False):
                z[yi[row.y], xi[row.x]] = row.center
                lo[yi[row.y], xi[row.x]] = row.low
            gx, gy = np.meshgrid(np.arange(len(xs)), np.arange(len(ys)))
            ax.plot_surface(gx, gy, np.ma.masked_invalid(z), cmap="viridis", norm=norm, alpha=0.9,
                            edgecolor="none" if min(z.shape) > 1 else None)
            ax.plot_wireframe(gx, gy, np.nan_to_num(lo), color="#444444", linewidth=0.6, alpha=0.6)
            ax.set_zlim(0, 1)
            for setter, vals in ((ax.set_xticks, xs), (ax.set_yticks, ys)):
                step = -(-len(vals) // 8)  # at most 8 tick labels per axis
                setter(range(0, len(vals), step), [_short(v, 6) for v in vals[::step]], fontsize=6)
            ax.tick_params(axis="z", labelsize=6)
            ax.set_xlabel(sel["x_dim"].iat[0].split(".")[-1], fontsize=7, labelpad=0)
            ax.set_ylabel(sel["y_dim"].iat[0].split(".")[-1], fontsize=7, labelpad=0)
            ax.set_zlabel("accuracy", fontsize=7, labelpad=0)
            ax.set_title(_panel_title(lab, f"{task} / {view}", cell * 0.8), fontsize=8)
            ax.view_init(elev=25, azim=-130)
    cax = fig.add_axes((1 - 70 / width, 0.25, 12 / width, 0.5))
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), cax=cax, label=f"accuracy ({mode}, interval centre)")
    fig.legend([Line2D([], [], color=matplotlib.colormaps["viridis"](0.7), lw=6),
                Line2D([], [], color="#444444", lw=1)],
               [f"accuracy ({mode})", "lower bound of the 95% interval"], loc="lower center", ncols=2, fontsize=8)
    split = result.options.get("split_by")
    fig.suptitle("Accuracy surfaces" + (f": {split} = {result.split}" if split and result.split is not None else ""))
    return fig


def compression_figure(result: Any, width: int) -> Figure:
    """Rows = facets, columns = correct / incorrect-or-invalid / truncated: compressed/raw ratio of
    each sampled answer against its completion tokens (log scale), coloured by group."""
    from reasonscape.analysis.compression import MAX_FACETS, PANELS
    from reasonscape.analysis.dimensions import natural_key
    from reasonscape.errors import InputError

    s = result.samples
    opts = result.options
    facets = sorted(set(s["facet"]), key=natural_key) if len(s) else [None]
    if len(facets) > MAX_FACETS:
        raise InputError(f"compression: {len(facets)} facets is more than {MAX_FACETS} rows in one PNG; narrow "
                         "with --filters, or use --facet-by none")
    labels = dict(zip(result.summary["facet"], result.summary["label"], strict=True)) if len(result.summary) else {}
    groups = sorted(set(s["group"]), key=natural_key) if len(s) else []
    colour = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(groups)}
    nr = len(facets)
    fig = _figure(width, nr * 260 + 120)
    axes = fig.subplots(nr, 3, squeeze=False, sharex=True, sharey=True)
    codes = {"correct": 0, "incorrect": 1, "invalid": 2, "truncated": 3}
    for r, fa in enumerate(facets):
        fs = s[s["facet"].isna()] if fa is None else s[s["facet"] == fa]
        for c, (title, outs) in enumerate(PANELS):
            ax = axes[r, c]
            sel = fs[fs["outcome"].map(codes).isin(outs)] if len(fs) else fs
            for g in groups:
                gs = sel[sel["group"] == g] if g is not None else sel[sel["group"].isna()]
                if len(gs):
                    ax.scatter(np.maximum(gs["tokens"], 1), gs["ratio"], s=8, alpha=0.5, color=colour[g],
                               label=str(g), linewidths=0)
            if not len(sel):
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, color="#777777")
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title(title, fontsize=10)
            if c == 0 and fa is not None:
                ax.set_ylabel("\n".join(textwrap.wrap(_short(labels.get(fa, fa), 60), 30)), fontsize=8)
            if r == nr - 1:
                ax.set_xlabel("answer length (completion tokens)")
    if groups:
        handles, names = [], []
        for ax in axes.flat:
            for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 6), fontsize=8,
                   title=opts.get("group_by"), markerscale=2)
    fig.supylabel("compression ratio: zstd bytes / raw UTF-8 bytes", fontsize=10)
    split = opts.get("split_by")
    fig.suptitle("Answer compressibility vs length (low ratio = repetitive text)"
                 + (f": {split} = {result.split}" if split and result.split is not None else ""))
    return fig


def hazard_figure(result: Any, width: int) -> Figure:
    """Left: share of completions still running (survival) and the cumulative share ended by each
    outcome; right: hazard per token bucket (failure = incorrect + invalid + truncated)."""
    from reasonscape.forensics import OUTCOMES

    f = result.frame
    fig = _figure(width, int(width * 0.42) + 60, constrained=False)  # fixed margins: one draw per file
    h = fig.get_figheight() * DPI
    fig.subplots_adjust(left=70 / width, right=1 - 20 / width, bottom=55 / h, top=1 - 60 / h, wspace=95 / (width / 2))
    a1, a2 = fig.subplots(1, 2)
    if len(f):
        last = int(np.max(np.flatnonzero(f[[f"ended_{o}" for o in OUTCOMES]].sum(axis=1).to_numpy() > 0),
                          initial=0)) + 1
        f = f.iloc[:last]
        x = f["end_tokens"].to_numpy(float)
        total = float(f["at_risk"].iat[0]) or 1.0
        mid = x - result.options.get("bucket_size", 256) / 2
        enough = f["at_risk"].to_numpy() >= HAZARD_MIN_AT_RISK  # a rate over a handful of completions is noise
        a1.step(np.r_[0, x], np.r_[1.0, (f["at_risk"].to_numpy(float) - f[[f"ended_{o}" for o in OUTCOMES]]
                                          .sum(axis=1).to_numpy(float)) / total],
                where="post", color="black", lw=2, label="still generating (survival)")
        for o in OUTCOMES:
            col, ls = OUTCOME_STYLE[o]
            a1.step(np.r_[0, x], np.r_[0.0, np.cumsum(f[f"ended_{o}"].to_numpy(float)) / total], where="post",
                    color=col, ls=ls, lw=1.5, label=f"ended {o} (cumulative)")
            a2.plot(mid, np.where(enough, f[f"hazard_{o}"], np.nan), ls=ls, color=col, lw=1.2, marker=".", label=o)
        a2.plot(mid, np.where(enough, f["hazard_failure"], np.nan), color="black", lw=2.2,
                label="failure (incorrect + invalid + truncated)")
        a1.legend(fontsize=8, loc="center right")
        a2.legend(fontsize=8, loc="upper left")
    else:
        _no_data(a1)
        _no_data(a2)
    a1.set_ylim(0, 1.02)
    a1.set_xlabel("completion tokens")
    a1.set_ylabel("share of completions")
    a1.set_title("Survival", fontsize=10)
    a2.set_xlabel(f"completion tokens (buckets of {result.options.get('bucket_size')})")
    a2.set_ylabel("hazard: share of running completions ending here")
    a2.set_title(f"Hazard by outcome (buckets with ≥ {HAZARD_MIN_AT_RISK} completions running)", fontsize=10)
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    label = f["split_label"].iat[0] if len(f) and f["split_label"].iat[0] else "all selected points"
    n = int(f["at_risk"].iat[0]) if len(f) else 0
    fig.suptitle(f"When answers end: {_short(label, 90)} ({n:,} completions)")
    return fig


def capacity_figure(result: Any, width: int) -> Figure:
    """frontier: accuracy vs rows (log) per series with the fitted logistic and the capacity (50%
    point) with its interval; peak: effective capacity vs target tokens with the peak starred."""
    from reasonscape.analysis.capacity import logistic
    from reasonscape.analysis.dimensions import natural_key

    obs, fits, opts = result.rows, result.fits, result.options
    facets = sorted(set(obs["facet"]), key=natural_key) if "facet" in obs.columns and len(obs) else [None]
    k = len(facets)
    legend_px = 40 + 15 * (len(set(obs["series"])) if len(obs) else 1)
    fig = _figure(width, (480 + legend_px) * -(-k // 3))
    ncols = min(k, 3)
    axes = fig.subplots(-(-k // ncols), ncols, squeeze=False)
    series = list(dict.fromkeys(obs["series"])) if len(obs) else []
    colour = {s: OKABE_ITO[i % len(OKABE_ITO)] for i, s in enumerate(series)}
    for ax, fa in zip(axes.flat, facets, strict=False):
        o = obs if fa is None else obs[obs["facet"] == fa]
        ff = fits if fa is None else fits[fits["facet"] == fa]
        for s in series:
            so = o[o["series"] == s]
            if not len(so):
                continue
            fit = ff[ff["series"] == s].iloc[0]
            col = colour[s]
            if result.kind == "frontier":
                x = so["num_rows"].to_numpy(float)
                ax.errorbar(x, so["accuracy"], yerr=[so["accuracy"] - so["low"], so["high"] - so["accuracy"]],
                            fmt="o", color=col, capsize=3, markersize=4)
                if fit["capacity"] is not None and np.isfinite(fit["capacity"] or np.nan):
                    grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 200)
                    if str(fit["status"]).startswith("ok"):
                        text = f"{fit['capacity']:.0f} rows" + (
                            f" [{fit['ci_low']:.0f}–{fit['ci_high']:.0f}]" if fit["ci_low"] else "")
                    else:  # the 50% point lies outside the rows measured: say which side, not a number
                        text = (f"> {x.max():g} rows*" if fit["capacity"] > x.max() else f"< {x.min():g} rows*")
                    ax.plot(grid, logistic(np.log2(grid), np.log2(fit["capacity"]), fit["slope"]), color=col,
                            label=f"{_short(fit['label'], 48)}: {text}")
                    if fit["status"] == "ok":
                        ax.axvline(fit["capacity"], color=col, ls=":", lw=1)
                        if fit["ci_low"]:
                            ax.axvspan(fit["ci_low"], fit["ci_high"], color=col, alpha=0.08)
                else:
                    ax.plot([], [], color=col, label=f"{_short(fit['label'], 48)}: no fit ({fit['status']})")
            else:
                x = so["target_tokens"].to_numpy(float)
                ax.fill_between(x, so["capacity_low"], so["capacity_high"], color=col, alpha=0.15)
                ax.plot(x, so["capacity"], "-o", color=col, markersize=4,
                        label=f"{_short(fit['label'], 48)}: peak {fit['peak_capacity']:.0f} rows at "
                              f"{fit['peak_target_tokens']:,.0f} tokens")
                ax.plot([fit["peak_target_tokens"]], [fit["peak_capacity"]], "*", color=col, markersize=14,
                        markeredgecolor="black")
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        if len(o):  # the data's range: a wide interval band must not stretch the axis
            xcol = "num_rows" if result.kind == "frontier" else "target_tokens"
            ax.set_xlim(float(o[xcol].min()) / 1.6, float(o[xcol].max()) * 1.6)
        if result.kind == "frontier":
            ax.axhline(0.5, color="#777777", lw=0.8, ls="--")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("table rows (params.num_rows, log scale)")
            ax.set_ylabel(f"accuracy ({opts.get('mode')}, 95% interval)")
        else:
            ax.set_xlabel("target tokens (manifold.target_tokens, log scale)")
            ax.set_ylabel("effective capacity (accuracy × rows)")
        if fa is not None:
            ax.set_title(f"{opts.get('facet_by')} = {fa}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:  # below the panel: inside, it hides the points
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        if not len(o):
            _no_data(ax)
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    title = ("Capacity frontier: table rows at 50% accuracy (logistic fit, 95% CI; * = not crossed in the data)"
             if result.kind == "frontier"
             else "Peak effective capacity by token budget (shaded: 95% interval; star: the peak)")
    fig.suptitle(title)
    return fig


def fft_figure(result: Any, width: int) -> Figure:
    """Rows = 1-dim views, columns = evals: the mean prompt token-id spectrum per value of the view's
    axis (colour runs along the axis: light = low, dark = high)."""
    from reasonscape.analysis.dimensions import natural_key

    f = result.frame
    views = list(dict.fromkeys(zip(f["task"], f["view"], strict=True))) if len(f) else [(None, None)]
    evals = list(dict.fromkeys(zip(f["eval_id"], f["label"], strict=True))) if len(f) else [(None, None)]
    nr, nc = len(views), len(evals)
    fig = _figure(width, nr * max(int(width / nc * 0.7), 240) + 100)
    axes = fig.subplots(nr, nc, squeeze=False, sharey=True)
    freqs = np.linspace(0, 0.5, len(f["spectrum"].iat[0])) if len(f) else np.linspace(0, 0.5, 65)
    cmap = matplotlib.colormaps["viridis"]
    for r, (task, view) in enumerate(views):
        for c, (e, lab) in enumerate(evals):
            ax = axes[r, c]
            sel = f[(f["task"] == task) & (f["view"] == view) & (f["eval_id"] == e)] if len(f) else f
            if not len(sel):
                _no_data(ax)
                continue
            values = sorted(set(sel["value"]), key=natural_key)
            for i, v in enumerate(values):
                row = sel[sel["value"] == v].iloc[0]
                ax.plot(freqs[1:], np.asarray(row["spectrum"])[1:], color=cmap(0.15 + 0.75 * i / max(len(values) - 1, 1)),
                        lw=1.3, label=str(v))
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.set_title(_panel_title(lab, f"{task} / {view}", width / nc * 0.85), fontsize=8)
            ax.set_xlabel("frequency (cycles per token)", fontsize=8)
            if c == 0:
                ax.set_ylabel("mean |FFT| of token ids / √n", fontsize=8)
            ax.legend(fontsize=6, title=sel["dimension"].iat[0], title_fontsize=6, loc="upper right")
    fig.suptitle(f"Prompt token-id spectra (tokenizer: {_short(result.options.get('tokenizer'), 40)})")
    return fig


BUILDERS.update({"spiderweb": spiderweb_figure, "surface": surface_figure, "compression": compression_figure,
                 "hazard": hazard_figure, "capacity": capacity_figure, "fft": fft_figure})
