"""The pytree-path <-> dotted-name layer (msjax.checkpoint.names) and the rename tables it applies."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from msjax import nn
from msjax.checkpoint import names
from msjax.common.tensor import Parameter
from msjax.errors import ParameterLoadError
from msjax.nn.cell import Cell


class Block(Cell):
    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.ones((2, 3), np.float32))
        self.bias = Parameter(np.zeros(2, np.float32))


class Model(Cell):
    def __init__(self):
        super().__init__()
        self.conv1 = Block()
        self.layer1 = Block()


def test_nnx_state_paths_map_to_parameter_names_and_back():
    model = Model()
    state = nnx.state(model)
    flat = names.flatten(state)
    assert set(flat) == set(model.parameters_dict())
    doubled = {k: np.asarray(v) * 2 for k, v in flat.items()}
    new_state = names.unflatten(doubled, state)
    nnx.update(model, new_state)
    np.testing.assert_array_equal(model.conv1.weight.get_value(), np.full((2, 3), 2.0))
    assert names.flatten(names.unflatten(flat, state)).keys() == flat.keys()


def test_optax_momentum_state_gets_mindspore_names():
    """Momentum's own named optax chain, named by its STATE_TABLE (the one table), as in MindSpore."""
    params = {"fc": {"weight": jnp.ones(2), "bias": jnp.zeros(1)}}
    tx = nn.Momentum([Parameter(np.ones(2, np.float32), name="w")], 0.01, 0.9)._transform(jnp.float32(0.01))
    renames = nn.Momentum.STATE_TABLE
    flat = names.flatten(tx.init(params), renames=renames)
    assert list(flat) == ["moments.fc.bias", "moments.fc.weight"]
    assert names.path_to_name(names.name_to_path("moments.fc.bias", tx.init(params), renames=renames),
                              renames=renames) == "moments.fc.bias"


def test_unflatten_reports_every_mismatch_and_flatten_refuses_collisions():
    like = {"a": np.zeros(1), "b": {"c": np.zeros(1)}}
    with pytest.raises(ParameterLoadError, match=r"missing \['b.c'\].*unexpected \['x'\]"):
        names.unflatten({"a": 1, "x": 2}, like)
    with pytest.raises(ParameterLoadError, match="two leaves"):
        names.flatten({"a.b": 1, "a": {"b": 2}})
    assert names.flatten([{"w": 1}, {"w": 2}], prefix="net.") == {"net.0.w": 1, "net.1.w": 2}
