"""The web apps' pure helpers and startup checks, without a browser: URL state, filters from UI
selections, the base path, the archetype rule, and queries the apps run on a real demo PointsDB."""

from __future__ import annotations

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


def test_forged_callback_values_never_reach_sql(demo: Path) -> None:
    """Values the UI never offers (SQL text, unknown evals, a forged click cell) come back as empty
    views or are ignored; the DB is untouched and no request fails."""
    from reasonscape.webapps import explorer, leaderboard

    src = open_source(demo)
    try:
        before = src.db.con.execute("SELECT count(*) FROM points").fetchone()[0]
        ex = explorer.build_app(src).server.test_client()
        evil = "x' OR 1=1; DROP TABLE points; --"
        click = {"view": "arithmetic|depth_length", "eval_id": "bc431b", "x": evil, "y": evil}
        out = _post(ex, "..ex-slice.figure...ex-hist.figure...ex-point.children..",
                    [{"id": "ex-slice", "property": "figure"}, {"id": "ex-hist", "property": "figure"},
                     {"id": "ex-point", "property": "children"}],
                    [{"id": "ex-view", "property": "value", "value": "arithmetic|depth_length"},
                     {"id": "ex-evals", "property": "value", "value": ["bc431b", evil]},
                     {"id": "ex-click", "property": "data", "value": click}])
        assert "0 points" in str(out["response"]["ex-point"]["children"])
        out = _post(ex, "..ex-surfaces.children...ex-status.children...ex-drawn.data..",
                    [{"id": "ex-surfaces", "property": "children"}, {"id": "ex-status", "property": "children"},
                     {"id": "ex-drawn", "property": "data"}],
                    [{"id": "ex-view", "property": "value", "value": evil},
                     {"id": "ex-evals", "property": "value", "value": [evil]}],
                    [{"id": "ex-drawn", "property": "data", "value": {"view": evil, "evals": [evil]}}])
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
        assert src.db.con.execute("SELECT count(*) FROM points").fetchone()[0] == before
    finally:
        src.db.close()
