"""The web apps' pure helpers and startup checks, without a browser: URL state, filters from UI
selections, the base path, the archetype rule, and queries the apps run on a real demo PointsDB."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from analyze_fixtures import build_demo

from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.webapps import state
from reasonscape.webapps.archetype import ARCHETYPES, Profile, archetype, profiles
from reasonscape.webapps.server import check_base_path, check_port, make_server, open_source

ALLOWED = {"tags": ["arch:moe", "arch:dense", "size:small"], "manifold": ["grid"], "sort": ["score", "ratio"],
           "size": [10, 25]}
DEFAULTS = {"tags": [], "manifold": [], "sort": "score", "size": 10, "page": 1}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("units"))


def test_state_round_trips_through_the_url() -> None:
    st = {"tags": ["arch:moe", "size:small"], "manifold": ["grid"], "sort": "ratio", "size": 25, "page": 3}
    assert state.decode_state(state.encode_state(st), ALLOWED, DEFAULTS) == st


@pytest.mark.parametrize("search", [
    "?tags=arch%3Amoe'%3B+DROP+TABLE+points%3B--", "?sort=__import__('os')", "?size=7", "?page=-1", "?page=abc",
    "?page=99999999999", "?" + "tags=x&" * 5000, "?nonsense=1", "%%%", None, 42, "?tags=" + "a" * 9000])
def test_state_ignores_values_the_server_never_offered(search: object) -> None:
    assert state.decode_state(search, ALLOWED, DEFAULTS) == DEFAULTS  # type: ignore[arg-type]


def test_tags_filter_is_or_within_a_key_and_across_keys() -> None:
    assert state.tags_filter([]) is None
    assert state.tags_filter(["arch:moe", "arch:dense", "size:small"]) == [["arch:moe", "size:small"],
                                                                           ["arch:dense", "size:small"]]
    many = [f"k{i}:a" for i in range(3)] + [f"k{i}:b" for i in range(3)] + [f"k{i}:c" for i in range(3)]
    many += [f"k{i}:d" for i in range(3, 6)] + [f"k{i}:e" for i in range(3, 6)]
    assert len(state.tags_filter(many)) <= state.MAX_TAG_COMBINATIONS


def test_build_filters_binds_every_selection(demo: Path) -> None:
    from reasonscape.pointsdb import compile_filters

    f = state.build_filters(["arch:moe"], ["single_digit"], "params.length", ["8", "16"], ["13d93e"])
    sql, params = compile_filters(f)
    assert "arch:moe" not in sql and "single_digit" not in sql and "16" not in sql
    assert ["arch:moe"] in params and "single_digit" in params
    src = open_source(demo)
    try:
        n = src.db.con.execute(f"SELECT count(*) FROM points WHERE {sql}", params).fetchone()[0]
        assert n == src.db.con.execute(
            "SELECT count(*) FROM points WHERE eval_id = '13d93e' AND json_extract_string(manifold, '$.id') = "
            "'single_digit' AND json_extract_string(params, '$.length') IN ('8', '16')").fetchone()[0] > 0
    finally:
        src.db.close()


def test_page_slice_clamps() -> None:
    assert state.page_slice(0, 5, 10) == (1, 0, 0)
    assert state.page_slice(25, 3, 10) == (3, 20, 25)
    assert state.page_slice(25, 99, 10) == (3, 20, 25)
    assert state.page_slice(25, -4, 10) == (1, 0, 10)


@pytest.mark.parametrize(("value", "want"), [("/", "/"), ("rs", "/rs/"), ("/rs", "/rs/"), ("/a/b-c_d.e/", "/a/b-c_d.e/")])
def test_base_path_normalised(value: str, want: str) -> None:
    assert check_base_path(value) == want


@pytest.mark.parametrize("value", ["", " ", "/a b/", "/../etc/", "/rs/?x=1", "/<script>/", "/a//b/", "/" + "a" * 300])
def test_bad_base_path_is_input_error(value: str) -> None:
    with pytest.raises(InputError, match="--url-base-pathname"):
        check_base_path(value)


@pytest.mark.parametrize("port", [0, -1, 65536, True, "8050"])
def test_bad_port_is_input_error(port: object) -> None:
    with pytest.raises(InputError, match="--port"):
        check_port(port)  # type: ignore[arg-type]


def test_taken_port_and_bad_host_are_one_line_errors() -> None:
    import dash

    app = dash.Dash(__name__)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(RuntimeFailure, match="already in use; choose another with --port"):
            make_server(app, "127.0.0.1", s.getsockname()[1])
    with pytest.raises(InputError, match="--host"):
        make_server(app, "no-such-host.invalid", 8050)


def test_empty_db_is_input_error(tmp_path: Path) -> None:
    from reasonscape.pointsdb import PointsDB

    db = tmp_path / "empty.db"
    PointsDB(db, read_only=False).close()
    with pytest.raises(InputError, match="holds no points"):
        open_source(db)


def test_archetype_rule_order() -> None:
    base = {"truncation": 0.0, "token_ratio": 1.0, "median_mean": 0.6}
    assert archetype(Profile(0.9, 0.1, 0.2, 1.0, 0.6)) == "truncation-limited"
    assert archetype(Profile(0.9, 0.1, **base)) == "generalist"
    assert archetype(Profile(0.6, 0.6, **base)) == "specialist"
    assert archetype(Profile(0.5, 0.2, 0.0, 2.0, 0.6)) == "overthinker"
    assert archetype(Profile(0.65, 0.2, 0.0, 0.5, 0.6)) == "efficient"
    assert archetype(Profile(0.2, 0.2, **base)) == "struggler"
    assert archetype(Profile(0.6, 0.2, **base)) == "balanced"


def test_archetypes_of_demo_follow_its_abilities(demo: Path) -> None:
    from reasonscape.analysis.spiderweb import spiderweb

    src = open_source(demo)
    try:
        frame = spiderweb(src.db).frame
    finally:
        src.db.close()
    kinds = {e: archetype(p) for e, p in profiles(frame).items()}
    assert set(kinds.values()) <= set(ARCHETYPES) and len(kinds) == 6
    by_label = dict(zip(frame["eval_id"], frame["label"], strict=True))
    weakest = next(e for e, lab in by_label.items() if lab.startswith("SimLlama-3B"))
    strongest = next(e for e, lab in by_label.items() if lab.startswith("SimQwen-32B (sim, ability 1.7)"))
    assert kinds[strongest] == "generalist"
    assert kinds[weakest] in ("struggler", "specialist")


def _post(client, output: str, outputs: list[dict], inputs: list[dict], state: list[dict] | None = None) -> dict:
    """One forged Dash callback request, as a hostile client could send it (bypassing the UI)."""
    body = {"output": output, "outputs": outputs, "inputs": inputs, "state": state or [],
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs]}
    res = client.post("/_dash-update-component", json=body)
    assert res.status_code in (200, 204), res.get_data(as_text=True)[:300]
    return res.get_json() or {}


def _forge(client, dep: dict, values: dict) -> dict:
    """Call the callback `dep` (an entry of /_dash-dependencies) with forged values per component id."""
    outs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in dep["output"].strip(".").split("...")]
    ins = [{"id": i["id"], "property": i["property"], "value": values.get(i["id"])} for i in dep["inputs"]]
    return _post(client, dep["output"], outs, ins,
                 [{"id": i["id"], "property": i["property"], "value": values.get(i["id"])} for i in dep["state"]])


def test_forged_callback_values_never_reach_sql(demo: Path) -> None:
    """Values the UI never offers (SQL text, unknown evals, a forged click cell) come back as empty
    views or are ignored; the DB is untouched and no request fails."""
    from reasonscape.webapps import explorer, leaderboard, spiderweb

    src = open_source(demo)
    try:
        before = src.db.con.execute("SELECT count(*) FROM points").fetchone()[0]
        ex = explorer.build_app(src).server.test_client()
        evil = "x' OR 1=1; DROP TABLE points; --"
        main = next(d for d in ex.get("/_dash-dependencies").get_json() if "ex-point.children" in d["output"])
        click = {"view": "arithmetic|depth_length", "eval_id": "bc431b", "x": evil, "y": evil}
        out = _forge(ex, main, {"ex-view": "arithmetic|depth_length", "ex-evals": ["bc431b", evil],
                                "ex-mode": evil, "ex-click": click})
        assert "0 points" in str(out["response"]["ex-point"]["children"])
        out = _forge(ex, main, {"ex-view": evil, "ex-evals": [evil], "ex-mode": evil, "ex-click": click})
        assert "no 2-dim view" in out["response"]["ex-status"]["children"]
        lb = leaderboard.build_app(src).server.test_client()
        deps = lb.get("/_dash-dependencies").get_json()[0]
        ins = [{"id": i["id"], "property": i["property"], "value": None} for i in deps["inputs"]]
        ins[1]["value"] = [evil]  # lb-tags
        ins[0]["value"] = "?sort=" + evil
        out = _post(lb, deps["output"], [{"id": o.split(".")[0], "property": o.split(".")[1]}
                                         for o in deps["output"].strip(".").split("...")],
                    ins, [{"id": s["id"], "property": s["property"], "value": 1} for s in deps["state"]])
        assert out["response"]["lb-tags"]["value"] == []  # the forged tag is dropped, not filtered on
        sw = spiderweb.build_app(src).server.test_client()
        dep = sw.get("/_dash-dependencies").get_json()[0]
        # a forged card (an eval id that is SQL text) and a forged drawn-state store
        cards = [[{"id": {"type": t, "eval": evil}, "property": p}] for t, p in
                 (("sw-graph", "figure"), ("sw-card", "style"), ("sw-kind", "children"))]
        outs = [{"id": "sw-cards", "property": "children"}, *cards, {"id": "sw-status", "property": "children"},
                {"id": "sw-drawn", "property": "data"}]
        values = {"sw-evals": ["bc431b", evil, 42], "sw-tags": [evil], "sw-manifold": [evil], "sw-style": evil,
                  "sw-tokens": evil, "sw-drawn": {"keys": {evil: evil}, "kinds": [1], "hidden": "x"}}
        ins = [{"id": i["id"], "property": i["property"], "value": values[i["id"]]} for i in dep["inputs"]]
        out = _post(sw, dep["output"], outs, ins,
                    [{"id": i["id"], "property": i["property"], "value": values[i["id"]]} for i in dep["state"]])
        assert out["response"]["sw-status"]["children"].startswith("1 evaluation shown")  # bc431b only
        assert '"eval": "bc431b"' in json.dumps(out["response"]["sw-cards"]["children"])
        assert evil not in json.dumps(out["response"]["sw-cards"]["children"])
        assert src.db.con.execute("SELECT count(*) FROM points").fetchone()[0] == before
    finally:
        src.db.close()


@pytest.mark.parametrize(("tags", "manifold", "groups"), [
    ([], [], []), (["arch:moe"], [], []), (["size:small", "arch:dense"], ["words", "nested"], []),
    (["ctx:2k", "ctx:4k"], [], ["sort", "tables"]), (["size:small"], ["words"], ["arithmetic", "sort"])])
@pytest.mark.parametrize("sort", ["score", "ratio"])
def test_leaderboard_cached_views_equal_the_verbs_on_the_tagged_evals(
        demo: Path, tags: list[str], manifold: list[str], groups: list[str], sort: str) -> None:
    """The app ranks every eval once (point estimates), bootstraps only a page's evals and selects the
    tagged rows: the rows, ranks, intervals and cells must be what `scores` and `pooled` give when
    asked for the tagged evals only."""
    from reasonscape.analysis.pooled import pooled
    from reasonscape.analysis.reasonscore import scores
    from reasonscape.webapps import layout
    from reasonscape.webapps.leaderboard import BOOTSTRAP, DEFAULTS, Views

    src = open_source(demo)
    try:
        views = Views(src, "base_task")
        sel = {"manifold": manifold, "groups": groups}
        views.view({**DEFAULTS, **sel, "sort": "ratio" if sort == "score" else "score", "size": 2})  # 2 CIs known
        shown, rows, cells, n = views.view({**DEFAULTS, **sel, "tags": tags, "sort": sort, "size": 100})
        tagged = layout.evals_with_tags(src.db, tags)
        filters = state.build_filters((), manifold, "base_task", groups, tagged or ())
        want = scores(src.db, filters, sort=sort, bootstrap=BOOTSTRAP).frame
        assert n == len(want) > 0 and [e for e, _ in rows] == list(want["eval_id"])
        assert list(shown["rank"]) == list(want["rank"])
        for col in ("score", "ci_low", "ci_high", "score_per_token", "tests", "truncation"):
            assert shown[col].tolist() == pytest.approx(want[col].tolist(), rel=1e-12), col
        ref = pooled(src.db, {**filters, "eval_id": list(want["eval_id"])}, "eval_id", "base_task", None, ("C_P",),
                     ("n", "correct", "truncated", "guess", "guess_truncated"))
        got = cells.sort_values(["series", "facet"]).reset_index(drop=True)
        ref = ref.sort_values(["series", "facet"]).reset_index(drop=True)
        assert got["series"].tolist() == ref["series"].tolist() and got["n"].tolist() == ref["n"].tolist()
        assert got["center"].tolist() == pytest.approx(ref["C_P_center"].tolist(), rel=1e-12)
    finally:
        src.db.close()


def test_leaderboard_page_past_the_end_and_no_match(demo: Path) -> None:
    from reasonscape.webapps.leaderboard import DEFAULTS, Views

    src = open_source(demo)
    try:
        views = Views(src, "base_task")
        st = {**DEFAULTS, "size": 4, "page": 9}
        shown, rows, _, n = views.view(st)
        assert st["page"] == 2 and n == 6 and list(shown["rank"]) == [5, 6] and len(rows) == 2
        st = {**DEFAULTS, "tags": ["arch:moe", "ctx:2k"]}  # no eval is both
        shown, rows, cells, n = views.view(st)
        assert (len(shown), rows, cells, n) == (0, [], None, 0)
    finally:
        src.db.close()


def test_spiderweb_cached_views_equal_the_verb_on_the_tagged_evals(demo: Path) -> None:
    from reasonscape.analysis.spiderweb import spiderweb
    from reasonscape.webapps import layout
    from reasonscape.webapps.spiderweb import Views

    src = open_source(demo)
    try:
        views = Views(src, "base_task")
        for tags, man in ((("size:small",), ()), ((), ("words",)), (("arch:dense",), ("nested", "words"))):
            tagged = layout.evals_with_tags(src.db, list(tags))
            filters = {"eval_id": tagged} if tagged else {}
            if man:
                filters["manifold.id"] = list(man)
            want = spiderweb(src.db, filters).frame
            got = views.population(tags, man)
            assert got["eval_id"].tolist() == want["eval_id"].tolist()
            assert got["group"].tolist() == want["group"].astype(str).tolist()
            assert got["center"].tolist() == pytest.approx(want["center"].tolist(), rel=1e-12)
            assert views.kinds(tags, man) == {e: archetype(p) for e, p in profiles(want).items()}
        assert views.population(("arch:moe", "ctx:2k"), ()) is None and views.kinds(("arch:moe", "ctx:2k"), ()) == {}
    finally:
        src.db.close()


def test_ranking_table_html_keeps_db_text_inert() -> None:
    import pandas as pd

    from reasonscape.webapps.leaderboard import table_html

    label = '<img src=x onerror="alert(1)">{1+1}\n\n[x](javascript:alert(1)) & \'q\''
    shown = pd.DataFrame([{"rank": 1, "eval_id": '"><script>', "label": label, "score": 2000.0, "ci_low": 1.0,
                           "ci_high": 3.0, "score_per_token": 0.5, "tests": 1234, "truncation": 0.05}])
    out = table_html(shown)
    assert "\n" not in out and "<img" not in out and "<script" not in out and "{" not in out and "}" not in out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#123;1+1&#125; [x](javascript:alert(1)) &amp; &#x27;q&#x27;" in out
    assert 'style="width:120px"' in out and ">1,234<" in out and ">5.0%<" in out  # the bar is capped at 1000


def test_heatmap_is_one_trace_with_truncation_marks_and_gaps() -> None:
    import pandas as pd

    from reasonscape.plots.web import MARK, heatmap_figure, message_figure

    cells = pd.DataFrame({"series": ["a", "a", "b", "zz"], "facet": ["8", "16", "8", "8"],
                          "center": [0.5, 0.9, 0.25, 1.0], "margin": [0.1, 0.05, 0.2, 0.0], "n": [100, 50, 10, 5],
                          "truncated": [10, 0, 0, 0]})
    fig = heatmap_figure(cells, [("b", "B"), ("a", "A <i>")], "base_task")
    assert len(fig["data"]) == 1
    t = fig["data"][0]
    assert t["x"] == ["8", "16"] and t["y"] == ["1. B", "2. A <i>"]  # natural order; the ranking's rows
    assert t["z"] == [[0.25, None], [0.5, 0.9]]  # b has no t10 cell; zz is not a row
    assert t["text"] == [["25", ""], [f"50{MARK}", "90"]]
    assert t["customdata"][1][0] == [0.1, 100, 0.1]
    assert heatmap_figure(cells.iloc[:0], [("a", "A")], "base_task") == message_figure(
        "no evaluations match these filters")
