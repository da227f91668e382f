"""The `ablation` figure: per bucket, the four item classes as stacked shares of the paired items, with
McNemar's exact p beside each bar and the conditions in the title. Importing this module registers it
with the shared figure builders (reasonscape.plots.figures.BUILDERS)."""

from __future__ import annotations

from typing import Any

from reasonscape.plots import figures
from reasonscape.plots.compare import paired_bars_figure
from reasonscape.plots.figures import PALETTE, Figure

#: (column, legend, colour): needs-reasoning first, the class the workflow selects.
CLASS_STYLE = (("needs_reasoning", "needs-reasoning (A only)", PALETTE[0]), ("b_only", "B only", PALETTE[1]),
               ("both_right", "both right", PALETTE[2]), ("both_wrong", "both wrong", "#bbbbbb"))


def ablation_figure(result: Any, width: int) -> Figure:
    s, c = result.summary, result.conditions
    a, b = c["a"], c["b"]
    head = (f"{a['model']}: A = {a['template']}/{a['sampler']} ({a['eval_id']}) vs "
            f"B = {b['template']}/{b['sampler']} ({b['eval_id']})")
    tail = (f"{s['paired']:,} paired items, needs-reasoning {s['needs_reasoning']:,}, B only {s['b_only']:,}, "
            f"McNemar exact p = {s['p_exact']:.3g}")
    return paired_bars_figure(result, width, CLASS_STYLE, "p_exact", "items",
                              "McNemar exact, needs-reasoning vs B only", [head, tail], right_px=150)


figures.BUILDERS.setdefault("ablation", ablation_figure)
