"""Gradient aggregation, finiteness checks and the JSON encodings of checkpoints."""

from __future__ import annotations

import json
from collections import namedtuple

import numpy as np
import pytest

from raysweep.errors import ExperimentMismatchError, SpecError
from raysweep.gradient import trees
from raysweep.gradient.checkpoint import decode_states, decode_tree, encode_states, encode_tree
from raysweep.gradient.trees import (
    decode_value,
    encode_value,
    global_norm,
    has_nonfinite,
    to_readable_json,
    tree_mean,
    tree_weighted,
)

Pair = namedtuple("Pair", ["u", "v"])


@pytest.fixture(params=["jax", "fallback"])
def walker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with JAX's tree_util and with the NumPy-only fallback walker."""
    if request.param == "fallback":
        monkeypatch.setattr(trees, "_jax_tree_util", lambda: None)
    else:
        import jax  # noqa: F401 - loading JAX switches the walker to jax.tree_util
    return str(request.param)


def test_tree_mean_averages_leafwise(walker: str) -> None:
    """tree_mean gives every objective's gradient the same weight, leaf by leaf."""
    g1 = {"a": np.array([1.0, 2.0]), "b": [np.array(1.0), (np.array(0.0),)]}
    g2 = {"a": np.array([3.0, 6.0]), "b": [np.array(3.0), (np.array(2.0),)]}
    mean = tree_mean([g1, g2])
    np.testing.assert_allclose(mean["a"], [2.0, 4.0])
    assert float(mean["b"][0]) == 2.0
    assert float(mean["b"][1][0]) == 1.0


def test_tree_weighted_uses_weights_in_objective_order(walker: str) -> None:
    """tree_weighted sums the gradients with the given weights, in order."""
    agg = tree_weighted([0.75, 0.25])
    out = agg([Pair(np.array(4.0), np.array(0.0)), Pair(np.array(8.0), np.array(4.0))])
    assert isinstance(out, Pair)
    assert float(out.u) == 5.0
    assert float(out.v) == 1.0


def test_tree_weighted_rejects_wrong_count_and_bad_weights() -> None:
    """A weight list that does not fit the objectives is an error, not a silent zip."""
    with pytest.raises(SpecError, match="2 gradients for 3 weights"):
        tree_weighted([1.0, 1.0, 1.0])([{"a": 1.0}, {"a": 2.0}])
    with pytest.raises(SpecError, match="finite weights"):
        tree_weighted([1.0, float("nan")])


def test_fallback_walker_rejects_mismatched_structures(walker: str) -> None:
    """Gradients with different structures cannot be averaged."""
    with pytest.raises(ValueError):
        tree_mean([{"a": np.array(1.0)}, {"b": np.array(1.0)}])


def test_nonfinite_and_norm(walker: str) -> None:
    """NaN and Inf are found in any float leaf; integer leaves are ignored; the norm is L2."""
    assert has_nonfinite({"a": np.array([1.0, np.nan])})
    assert has_nonfinite([np.array(np.inf, dtype=np.float32)])
    assert not has_nonfinite({"a": np.array([1.0, 2.0]), "n": np.array(3)})
    assert global_norm({"a": np.array([3.0]), "b": (np.array([4.0]),)}) == pytest.approx(5.0)


def test_plain_values_round_trip_exactly() -> None:
    """Simulator states made of numbers, arrays, dicts, lists and tuples survive JSON exactly."""
    state = {
        "x": np.array([[0.1, 0.2]], dtype=np.float32),
        "key": np.array([1, 2], dtype=np.uint32),
        "t": (1, 2.5, None),
        "l": [True, "s"],
        "f": 1e-300,
    }
    back = decode_value(json.loads(json.dumps(encode_value(state))))
    assert back["x"].dtype == np.float32
    np.testing.assert_array_equal(back["x"], state["x"])
    assert back["key"].dtype == np.uint32
    assert back["t"] == (1, 2.5, None)
    assert back["l"] == [True, "s"]
    assert back["f"] == 1e-300


def test_user_objects_are_not_encodable() -> None:
    """A state holding a user object cannot be stored, and encode_states marks it unsaved."""
    with pytest.raises(TypeError):
        encode_value({"obj": object()})
    encoded = json.loads(json.dumps(encode_states({"s.0": object(), "s.1": 3})))
    states, reset = decode_states(encoded)
    assert states == {"s.0": None, "s.1": 3}
    assert reset == {"s.0": "object"}


def test_optimizer_state_round_trips_through_json() -> None:
    """An optax state stored as leaves refills the structure of optimizer.init(params)."""
    import jax
    import jax.numpy as jnp
    import optax

    opt = optax.chain(optax.clip(1.0), optax.adam(0.1))
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(3)}
    state = opt.init(params)
    for _ in range(3):
        _, state = opt.update({"w": jnp.full((2, 2), 0.3), "b": jnp.ones(3)}, state, params)
    stored = json.loads(json.dumps(encode_tree(state)))
    back = decode_tree(opt.init(params), stored, "optimizer state")
    assert str(jax.tree_util.tree_structure(back)) == str(jax.tree_util.tree_structure(state))
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.dtype == b.dtype
    with pytest.raises(ExperimentMismatchError, match="stored parameters has structure"):
        decode_tree({"other": jnp.ones(2)}, encode_tree(params), "parameters")


def test_readable_json_of_params() -> None:
    """Parameters are stored for people as nested plain JSON."""
    import jax.numpy as jnp

    out = to_readable_json({"r0": jnp.asarray(1.5), "v": np.array([1, 2]), "p": Pair(1.0, (2,))})
    assert json.loads(json.dumps(out)) == {"r0": 1.5, "v": [1, 2], "p": {"u": 1.0, "v": [2]}}
