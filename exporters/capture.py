"""Capture: a Cell and example inputs -> one flat ``ir.Graph`` that every emitter reads.

The cell runs in eval mode as a pure function of (parameter arrays, inputs), built with
``nnx.split``/``nnx.merge`` and traced once with ``jax.make_jaxpr``. Nested jaxprs (jit,
custom_jvp/custom_vjp calls, closed_call, remat) are inlined, ``stop_gradient`` is dropped,
literals and closed-over arrays become named constants, and nodes nothing reads are removed.
A ``lax.scan`` (the recurrent layers) has a static length: it is unrolled, its body inlined once
per step (``Builder.unroll``), so every format writes it with the ops it already has.
Each node's ``source`` is the dotted path of the cell whose ``construct`` produced it.

An input with unknown dims (``Tensor(shape=[None, 3], dtype=msjax.float32)``, shape (-1, 3)) is
traced with JAX shape polymorphism: one symbolic dimension per unknown dim, "batch" for dim 0
(shared by all inputs) and "<input name>_dim<axis>" for the others. The graph's shapes and the
nodes' shape params then hold ``ir.Dim``s (JAX's dimension expressions, converted).
"""
from __future__ import annotations

import inspect
from collections import OrderedDict

import jax
import numpy as np
from flax import nnx
from jax.extend import core as jcore

from . import ir
from msjax.common import dtype as mstype
from msjax.common.tensor import Parameter, Tensor, unwrap
from msjax.errors import ExportError
from msjax.nn.cell import Cell, inline_calls
from msjax.ops import _lowering

__all__ = ["capture"]

#: primitives whose sub-jaxpr is inlined, and the param that holds it
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
           "custom_vjp_call_jaxpr": "fun_jaxpr", "remat2": "jaxpr", "checkpoint": "jaxpr"}
#: primitives that are the identity at inference time
_ELIDE = {"stop_gradient", "optimization_barrier"}


def capture(net, *inputs, name=None):
    """Trace ``net`` in eval mode on example ``inputs`` into an ``ir.Graph``.

    >>> graph = capture(net, Tensor(np.ones((1, 3), np.float32)))
    >>> [n.op for n in graph.nodes]                       # doctest: +SKIP
    ['dot_general', 'add']
    """
    if not isinstance(net, Cell):
        raise ExportError(f"capture needs a msjax Cell, got {type(net).__name__}")
    arrays = _input_arrays(net, inputs)
    symbolic = any(isinstance(a, jax.ShapeDtypeStruct) for a in arrays)
    modes = [(cell, cell.training) for _, cell in net.cells_and_names()]
    net.set_train(False)
    try:
        graphdef, state = nnx.split(net)
        variables = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
        values = jax.tree.leaves(state)
        if len(values) != len(variables):
            raise ExportError(f"{type(net).__name__}: a state variable holds more than one array")
        dynamic = [i for i, v in enumerate(variables) if isinstance(v, Parameter)]

        def pure(param_values, args):
            leaves = list(values)
            for i, value in zip(dynamic, param_values):
                leaves[i] = value
            cell = nnx.merge(graphdef, jax.tree.unflatten(jax.tree.structure(state), leaves))
            scopes = {id(c): path for path, c in cell.cells_and_names() if path}
            with inline_calls(scopes):
                out = cell.construct(*args)
            outs = jax.tree.leaves(unwrap(out))
            after = jax.tree.leaves(nnx.state(cell))          # Parameters construct updated in place
            if len(after) != len(values):
                raise ExportError(f"cannot capture {type(net).__name__}: construct adds or removes "
                                  f"state variables")
            n_outputs.append(len(outs))
            return outs + [after[i] for i in dynamic]

        n_outputs = []
        with _lowering.canonical():  # one primitive per layer, as the emitters translate them
            closed = jax.make_jaxpr(pure)([values[i] for i in dynamic], arrays)
    except jax.errors.ConcretizationTypeError as exc:
        raise ExportError(f"cannot capture {type(net).__name__}: construct uses a tensor's value in Python "
                          f"control flow; use jnp.where or lax.cond instead ({exc})") from exc
    except (jax.errors.InconclusiveDimensionOperation, TypeError, ValueError) as exc:
        if not symbolic or isinstance(exc, ExportError):
            raise
        raise ExportError(f"cannot capture {type(net).__name__} with dynamic input shapes "
                          f"{[_shape_text(a) for a in arrays]}: {type(exc).__name__}: {exc}") from exc
    finally:
        for cell, mode in modes:
            cell.training = mode
    param_names = [variables[i].name for i in dynamic]
    known = {path for path, _ in net.cells_and_names() if path}
    return _build(closed, net, param_names, arrays, known, name or type(net).__name__, symbolic,
                  n_outputs[0])


def _input_arrays(net, inputs):
    """The traced inputs: arrays, and a ``jax.ShapeDtypeStruct`` with symbolic dims for each
    data-less Tensor whose shape has unknown (-1) dims."""
    names = input_names(net, len(inputs))
    scope = jax.export.SymbolicScope()
    arrays = []
    for index, (x, name) in enumerate(zip(inputs, names)):
        shape = tuple(x.shape) if isinstance(x, Tensor) else ()
        if not any(d < 0 for d in shape):
            arrays.append(_input_array(x, index))
            continue
        if any(d < -1 for d in shape):
            raise ExportError(f"export input {index} ({name!r}) has a dynamic rank (shape {list(shape)}); "
                              f"only dims may be unknown: give the rank, e.g. shape=[None, 3]")
        spec = ", ".join(("batch" if axis == 0 else f"{name}_dim{axis}") if d == -1 else str(d)
                         for axis, d in enumerate(shape))
        dims = jax.export.symbolic_shape(spec, scope=scope)
        arrays.append(jax.ShapeDtypeStruct(dims, mstype.to_numpy(x.dtype)))
    return arrays


def _shape_text(a):
    return "(" + ", ".join(str(d) for d in a.shape) + ")"


def _dim(d):
    """A JAX dimension (int or symbolic expression) as an int or ``ir.Dim``."""
    if not jax.export.is_symbolic_dim(d):
        return int(d)
    try:
        terms = [_term(term, coeff) for term, coeff in d._sorted_terms]
    except AttributeError as exc:     # JAX's expression internals moved: say so plainly
        raise ExportError(f"cannot read JAX's symbolic dimension {d} ({exc}); this JAX version is "
                          f"not supported for dynamic-shape export") from exc
    return terms[0] if len(terms) == 1 else ir.Dim("add", tuple(terms))


def _term(term, coeff):
    factors = []
    for factor, power in term._factors:
        if factor.var is not None:
            x = ir.Dim.symbol(factor.var)
        else:
            x = ir.Dim(factor.operation, tuple(_dim(o) for o in factor.operands))
        factors += [x] * int(power)
    if not factors:
        return int(coeff)
    if coeff != 1:
        factors.insert(0, int(coeff))
    return factors[0] if len(factors) == 1 else ir.Dim("mul", tuple(factors))


def _shape(shape):
    """An aval shape for the IR: as is when static, with ``ir.Dim``s for symbolic dims."""
    shape = tuple(shape)
    if not any(jax.export.is_symbolic_dim(d) for d in shape):
        return shape
    return tuple(_dim(d) for d in shape)


def _param(value):
    """An equation param with every JAX symbolic dimension (in plain tuples/lists) as ``ir.Dim``."""
    if jax.export.is_symbolic_dim(value):
        return _dim(value)
    if type(value) in (tuple, list) and _has_symbolic(value):
        return type(value)(_param(v) for v in value)
    return value


def _has_symbolic(value):
    if jax.export.is_symbolic_dim(value):
        return True
    return type(value) in (tuple, list) and any(_has_symbolic(v) for v in value)


def _input_array(x, index):
    x = unwrap(x)
    if isinstance(x, (jax.Array, np.ndarray)):
        return x
    if isinstance(x, (int, float, bool, np.generic, list, tuple)):
        return Tensor(x)._array()
    raise ExportError(f"export input {index} must be a Tensor or array, got {type(x).__name__}")


def input_names(net, count):
    """Graph input names as MindSpore gives them: construct's argument names ("x" for LeNet5),
    then ``<name of *args><i>`` (``inputs0``, ``inputs1`` for ``TrainOneStepCell``)."""
    try:
        params = list(inspect.signature(net.construct).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "inputs")
    names += [f"{var}{i}" for i in range(count - len(names))]
    return names[:count]


class _Builder:
    def __init__(self, known, symbolic=False):
        self.known = known
        self.symbolic = symbolic
        self.nodes = []
        self.constants = OrderedDict()
        self._literals = {}
        self._count = 0

    def fresh(self):
        self._count += 1
        return f"t{self._count}"

    def constant(self, value, dtype=None):
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._literals:
            return self._literals[key]
        name = f"const{len(self.constants)}"
        self.constants[name] = array
        if key is not None:
            self._literals[key] = name
        return name

    def read(self, var, env):
        if isinstance(var, jcore.Literal):
            return self.constant(var.val, np.dtype(var.aval.dtype))
        return env[var]

    def source(self, stack):
        for scope in reversed(stack):
            if scope in self.known:
                return scope
        return ""

    def inline(self, jaxpr, env, stack):
        for eqn in jaxpr.eqns:
            names = [self.read(v, env) for v in eqn.invars]
            here = stack + tuple(s for s in str(eqn.source_info.name_stack).split("/") if s)
            prim = eqn.primitive.name
            key = _INLINE.get(prim)
            sub = eqn.params.get(key) if key else None
            if sub is not None:
                inner, consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, ())
                inner_env = {v: self.constant(c) for v, c in zip(inner.constvars, consts)}
                inner_env.update(zip(inner.invars, names[len(names) - len(inner.invars):]))
                self.inline(inner, inner_env, here)
                env.update(zip(eqn.outvars, (self.read(v, inner_env) for v in inner.outvars)))
                continue
            if prim in _ELIDE:
                env.update(zip(eqn.outvars, names))
                continue
            if prim == "scan":
                env.update(zip(eqn.outvars, self.unroll(eqn, names, here)))
                continue
            outs = [ir.Value(self.fresh(), _shape(v.aval.shape), np.dtype(v.aval.dtype)) for v in eqn.outvars]
            env.update((v, o.name) for v, o in zip(eqn.outvars, outs))
            params = {k: _param(v) for k, v in eqn.params.items()} if self.symbolic else dict(eqn.params)
            self.nodes.append(ir.Node(prim, names, outs, params, self.source(here)))


    def node(self, op, inputs, shape, dtype, params, stack):
        """Add one node of ``op`` with a fresh output; return the output's name."""
        out = ir.Value(self.fresh(), shape, np.dtype(dtype))
        self.nodes.append(ir.Node(op, list(inputs), [out], params, self.source(stack)))
        return out.name

    def unroll(self, eqn, names, stack):
        """A ``lax.scan`` of static length as its body inlined once per step: step ``t`` reads
        ``xs[t]`` (a slice and a squeeze of axis 0), the carry flows from step to step, and each
        stacked output is the concatenation of its steps (``reverse``: the steps run from the end).
        Returns the names of the scan's outputs: the final carry, then the stacked outputs."""
        p = eqn.params
        closed, length = p["jaxpr"], int(p["length"])
        body, n_consts, n_carry = closed.jaxpr, int(p["num_consts"]), int(p["num_carry"])
        if length < 1:
            raise ExportError(f"cannot export a lax.scan of length {length}")
        consts, carry = names[:n_consts], names[n_consts:n_consts + n_carry]
        xs = list(zip(names[n_consts + n_carry:], eqn.invars[n_consts + n_carry:]))
        steps = [[None] * length for _ in body.outvars[n_carry:]]
        for t in (reversed(range(length)) if p["reverse"] else range(length)):
            x_t = []
            for name, var in xs:
                shape, dtype = _shape(var.aval.shape), var.aval.dtype
                start, limit = (t,) + (0,) * (len(shape) - 1), (t + 1,) + tuple(shape[1:])
                one = self.node("slice", [name], (1,) + tuple(shape[1:]), dtype,
                                {"start_indices": start, "limit_indices": limit, "strides": None}, stack)
                x_t.append(self.node("squeeze", [one], tuple(shape[1:]), dtype, {"dimensions": (0,)}, stack))
            inner_env = {v: self.constant(c) for v, c in zip(body.constvars, closed.consts)}
            inner_env.update(zip(body.invars, consts + carry + x_t))
            self.inline(body, inner_env, stack)
            outs = [self.read(v, inner_env) for v in body.outvars]
            carry = outs[:n_carry]
            for column, y in zip(steps, outs[n_carry:]):
                column[t] = y
        stacked = []
        for column, var in zip(steps, eqn.outvars[n_carry:]):
            shape, dtype = _shape(var.aval.shape), var.aval.dtype
            rows = [self.node("reshape", [y], (1,) + tuple(shape[1:]), dtype,
                              {"new_sizes": (1,) + tuple(shape[1:]), "dimensions": None, "sharding": None}, stack)
                    for y in column]
            stacked.append(self.node("concatenate", rows, shape, dtype, {"dimension": 0}, stack))
        return carry + stacked


def _build(closed, net, param_names, arrays, known, name, symbolic=False, n_outputs=None):
    jaxpr = closed.jaxpr
    builder = _Builder(known, symbolic)
    env = {v: builder.constant(c) for v, c in zip(jaxpr.constvars, closed.consts)}
    in_names = input_names(net, len(arrays))
    env.update(zip(jaxpr.invars, param_names + in_names))
    builder.inline(jaxpr, env, ())
    produced = {o.name for n in builder.nodes for o in n.outputs}
    n_outputs = len(jaxpr.outvars) if n_outputs is None else n_outputs
    updates = OrderedDict()                # parameter -> the value it holds after the call
    for param_name, var in zip(param_names, jaxpr.outvars[n_outputs:]):
        src = builder.read(var, env)
        if src != param_name:
            updates[param_name] = src
    outputs, seen = [], set()
    for var in jaxpr.outvars[:n_outputs]:
        src = builder.read(var, env)
        aval = var.aval
        if src not in produced or src in seen:     # an input, parameter or constant returned as is
            out = ir.Value(builder.fresh(), _shape(aval.shape), np.dtype(aval.dtype))
            builder.nodes.append(ir.Node("copy", [src], [out], {}, ""))
            src = out.name
        seen.add(src)
        outputs.append(ir.Value(src, _shape(aval.shape), np.dtype(aval.dtype)))
    nodes = _prune(builder.nodes, {o.name for o in outputs} | set(updates.values()))
    used = {i for n in nodes for i in n.inputs}
    constants = OrderedDict((k, v) for k, v in builder.constants.items() if k in used)
    traced = {n: np.dtype(v.aval.dtype) for n, v in zip(param_names, jaxpr.invars)}
    parameters = OrderedDict()
    for _, param in net.parameters_and_names():       # values as the graph computes them (x64 off)
        array = np.asarray(param.get_value())
        parameters[param.name] = array.astype(traced.get(param.name, array.dtype), copy=False)
    inputs = [ir.Value(n, _shape(v.aval.shape), np.dtype(v.aval.dtype))
              for n, v in zip(in_names, jaxpr.invars[len(param_names):])]
    return ir.Graph(name, inputs, outputs, parameters, constants, nodes, updates)


def _prune(nodes, live):
    """Drop nodes whose outputs nothing reads (dead code left by eval-mode branches)."""
    live = set(live)
    kept = []
    for node in reversed(nodes):
        if any(o.name in live for o in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    return kept[::-1]
