"""The `compare` figure: per group, the paired outcomes as stacked shares with the Holm-adjusted McNemar
p-value, and the ReasonScore difference with its CI in the title. Importing this module registers it
with the shared figure builders (reasonscape.plots.figures.BUILDERS)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from reasonscape.plots import figures
from reasonscape.plots.figures import PALETTE, Figure, _figure, _margins, _short

_CELLS = (("both_right", "both right", PALETTE[2]), ("only_a", "only A right", PALETTE[0]),
          ("only_b", "only B right", PALETTE[1]), ("both_wrong", "both wrong", "#bbbbbb"))


def paired_bars_figure(result: Any, width: int, cells: tuple, p_column: str, unit: str, p_note: str,
                       title: list[str], right_px: int = 130) -> Figure:
    """Per group, the paired outcome classes as stacked shares with a McNemar p beside each bar: the
    shape `compare` (tests of two evals) and `ablation` (items under two conditions) share. `cells`
    holds (column, legend, colour) in stacking order; `title` the title's lines (wrapped here)."""
    g = result.groups
    n = len(g)
    fig = _figure(width, 170 + 26 * max(n, 1), constrained=False)
    ax = fig.add_subplot()
    labels = [_short(v, 36) for v in g["group"]]
    _margins(fig, labels, width, 10, top_px=70, bottom_px=95, right_px=right_px)
    y = np.arange(n)[::-1]
    if n:
        left = np.zeros(n)
        paired = np.maximum(g["paired"].to_numpy(float), 1)
        for col, name, colour in cells:
            share = g[col].to_numpy(float) / paired
            ax.barh(y, share, left=left, color=colour, label=name, height=0.7)
            left += share
        for yi, p, m in zip(y, g[p_column].to_numpy(float), g["paired"].to_numpy(int), strict=True):
            mark = "*" if p < 0.05 else ""
            ax.text(1.01, yi, f"p={p:.2g}{mark} (n={m:,})", va="center", fontsize=8, transform=ax.get_yaxis_transform())
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, n - 0.3)
        fig.legend(loc="lower center", ncols=4, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, f"no paired {unit}", ha="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of paired {unit} (p: {p_note}; * < 0.05)")
    ax.set_ylabel(str(result.options.get("group_by")))
    ax.set_title("\n".join(line for t in title for line in textwrap.wrap(t, 110)), fontsize=10)
    return fig


def compare_figure(result: Any, width: int) -> Figure:
    s = result.summary
    a, b = s["a"], s["b"]
    if s.get("difference") is not None:
        diff = (f"ReasonScore A - B = {s['difference']:+.1f} (95% CI {s['ci_low']:+.1f} to {s['ci_high']:+.1f}; "
                f"A {a['score']:.0f}, B {b['score']:.0f})")
    else:
        diff = "no paired tests"
    return paired_bars_figure(result, width, _CELLS, "p_holm", "tests", "McNemar exact, Holm-adjusted",
                              [f"A = {a['label']} ({a['eval_id']}) vs B = {b['label']} ({b['eval_id']})", diff])


figures.BUILDERS.setdefault("compare", compare_figure)
