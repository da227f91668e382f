"""Identity hashes pin point seeds, eval ids and cache keys."""

from reasonscape.identity import cache_key, canonical_json, eval_id, params_key, point_seed, sha256_hex


def test_eval_id_follows_the_formula_not_the_docs_example():
    triple = "GLM-4.5-Air-AWQ|zeroshot-nosys|qwen3-think-max"
    assert eval_id("GLM-4.5-Air-AWQ", "zeroshot-nosys", "qwen3-think-max") == sha256_hex(triple)[:6] == "1f0030"


def test_point_seed_ignores_count_and_key_order():
    a = point_seed(42, {"length": 8, "max_depth": 2, "count": 32})
    b = point_seed(42, {"max_depth": 2, "length": 8})
    assert a == b == 42 + int(sha256_hex('{"length":8,"max_depth":2}')[-8:], 16)
    assert point_seed(43, {"length": 8, "max_depth": 2}) == a + 1


def test_canonical_json_is_sorted_and_compact():
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert params_key({"count": 5, "x": 1}) == '{"x":1}'
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
