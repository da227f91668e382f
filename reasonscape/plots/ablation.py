"""The `ablation` figure: per bucket, the four item classes as stacked shares of the paired items, with
McNemar's exact p beside each bar and the conditions in the title. Importing this module registers it
with the shared figure builders (reasonscape.plots.figures.BUILDERS)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from reasonscape.plots import figures
from reasonscape.plots.figures import PALETTE, Figure, _figure, _margins, _short

#: (column, legend, colour): needs-reasoning first, the class the workflow selects.
CLASS_STYLE = (("needs_reasoning", "needs-reasoning (A only)", PALETTE[0]), ("b_only", "B only", PALETTE[1]),
               ("both_right", "both right", PALETTE[2]), ("both_wrong", "both wrong", "#bbbbbb"))


def ablation_figure(result: Any, width: int) -> Figure:
    g, s, c = result.groups, result.summary, result.conditions
    n = len(g)
    fig = _figure(width, 170 + 26 * max(n, 1), constrained=False)
    ax = fig.add_subplot()
    labels = [_short(v, 36) for v in g["group"]]
    _margins(fig, labels, width, 10, top_px=70, bottom_px=95, right_px=150)
    y = np.arange(n)[::-1]
    if n:
        left = np.zeros(n)
        paired = np.maximum(g["paired"].to_numpy(float), 1)
        for col, name, colour in CLASS_STYLE:
            share = g[col].to_numpy(float) / paired
            ax.barh(y, share, left=left, color=colour, label=name, height=0.7)
            left += share
        for yi, p, m in zip(y, g["p_exact"].to_numpy(float), g["paired"].to_numpy(int), strict=True):
            mark = "*" if p < 0.05 else ""
            ax.text(1.01, yi, f"p={p:.2g}{mark} (n={m:,})", va="center", fontsize=8,
                    transform=ax.get_yaxis_transform())
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, n - 0.3)
        fig.legend(loc="lower center", ncols=4, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no paired items", ha="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of paired items (p: McNemar exact, needs-reasoning vs B only; * < 0.05)")
    ax.set_ylabel(str(result.options.get("group_by")))
    a, b = c["a"], c["b"]
    head = (f"{a['model']}: A = {a['template']}/{a['sampler']} ({a['eval_id']}) vs "
            f"B = {b['template']}/{b['sampler']} ({b['eval_id']})")
    tail = (f"{s['paired']:,} paired items, needs-reasoning {s['needs_reasoning']:,}, B only {s['b_only']:,}, "
            f"McNemar exact p = {s['p_exact']:.3g}")
    ax.set_title("\n".join(textwrap.wrap(head, 110) + textwrap.wrap(tail, 110)), fontsize=10)
    return fig


figures.BUILDERS.setdefault("ablation", ablation_figure)
