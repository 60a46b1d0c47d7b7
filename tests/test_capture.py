"""msjax_exporters.capture: Cell + example inputs -> flat ir.Graph with named parameters and sources."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msjax_exporters import ir
from msjax_exporters.capture import capture
from msjax.common.tensor import Parameter, Tensor
from msjax.errors import ExportError
from msjax.nn.cell import Cell


class Affine(Cell):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = Parameter(np.arange(n_in * n_out, dtype=np.float32).reshape(n_out, n_in) / 10)
        self.bias = Parameter(np.ones(n_out, np.float32))

    def construct(self, x):
        return jax.nn.relu(x @ self.weight.T + self.bias)


class Net(Cell):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.full(2, 2.0, np.float32))
        self.body = Affine(3, 4)
        self.head = Affine(4, 2)

    def construct(self, x, y):
        h = jax.jit(lambda t: self.head(self.body(t)))(x)    # a nested jit is inlined
        drop = h * 0.5 if self.training else h                 # eval mode is what gets captured
        return drop * self.scale + jax.lax.stop_gradient(y), x


def test_capture_flattens_names_and_sources():
    net = Net().set_train(True)
    x, y = np.ones((1, 3), np.float32), np.zeros((1, 2), np.float32)
    graph = capture(net, Tensor(x), y)
    assert isinstance(graph, ir.Graph) and graph.name == "Net"
    assert list(graph.parameters) == ["scale", "body.weight", "body.bias", "head.weight", "head.bias"]
    np.testing.assert_array_equal(graph.parameters["body.weight"], net.body.weight.asnumpy())
    assert [(v.name, v.shape) for v in graph.inputs] == [("x", (1, 3)), ("y", (1, 2))]
    assert [v.shape for v in graph.outputs] == [(1, 2), (1, 3)]
    ops = [n.op for n in graph.nodes]
    assert "jit" not in ops and "custom_jvp_call" not in ops and "stop_gradient" not in ops
    assert ops[-1] == "copy" and graph.nodes[-1].inputs == ["x"]      # returned input -> copy node
    assert {n.source for n in graph.nodes if n.op == "dot_general"} == {"body", "head"}
    assert {n.source for n in graph.nodes if n.op == "mul"} == {""}    # top level, eval mode: no * 0.5
    assert net.training and net.body.training                          # mode restored
    values = graph.values()
    assert all(name in values for n in graph.nodes for name in n.inputs)
    assert all(isinstance(a, np.ndarray) for a in graph.constants.values())


def test_capture_graph_evaluates_like_the_net():
    """Interpreting the IR node by node with jax primitives reproduces the network's output."""
    net = Net()
    x, y = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32), np.ones((2, 2), np.float32)
    graph = capture(net, x, y)
    env = {v.name: a for v, a in zip(graph.inputs, (x, y))}
    env.update(graph.parameters)
    env.update(graph.constants)
    prims = {p.name: p for p in (jax.lax.dot_general_p, jax.lax.add_p, jax.lax.max_p, jax.lax.mul_p,
                                 jax.lax.broadcast_in_dim_p, jax.lax.transpose_p)}
    for node in graph.nodes:
        if node.op == "copy":
            env[node.outputs[0].name] = env[node.inputs[0]]
            continue
        out = prims[node.op].bind(*[jnp.asarray(env[i]) for i in node.inputs], **node.params)
        env[node.outputs[0].name] = out
    want = net(Tensor(x), Tensor(y))
    np.testing.assert_allclose(np.asarray(env[graph.outputs[0].name]), want[0].asnumpy(), rtol=1e-6)


def test_capture_rejects_non_cells_and_bad_inputs():
    with pytest.raises(ExportError, match="Cell"):
        capture(lambda x: x, np.ones(2))
    with pytest.raises(ExportError, match="input 0"):
        capture(Net(), object(), np.ones(2))

    class Branchy(Cell):
        def construct(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ExportError, match="Branchy: construct uses a tensor's value"):
        capture(Branchy(), np.ones(2, np.float32))
