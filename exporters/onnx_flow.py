"""The ONNX rules of jax's structured control flow: ``cond`` as ``If``, ``while`` as ``Loop``.

A branch or loop body is a jaxpr of its own: it is flattened the way ``capture`` flattens the
Cell (nested calls inlined, a static scan unrolled), its names given a prefix of their own so they
cannot meet the outer graph's, and written with the outer graph's rules into an ONNX sub-graph.
The sub-graph reads the outer values it needs by name (ONNX's scoping); the constants it needs
become initializers of the outer graph, where every sub-graph sees them.

- ``cond`` (``lax.cond``; ``lax.switch``, whose index is clamped, as a chain of ``If``s):
  ``If(index == k)`` with branch ``k`` as ``then_branch``, the rest as ``else_branch``.
- ``while`` (``lax.while_loop``): ``Loop`` with no trip count; the condition is computed on the
  initial carry in the outer graph and on each new carry at the end of the body.
"""
from __future__ import annotations

import copy

import numpy as np
from onnx import helper

from . import ir
from .capture import _Builder
from .onnx_context import onnx_type
from msjax.errors import UnsupportedOpError

__all__ = ["cond", "while_loop"]


def _value_info(name, value):
    return helper.make_tensor_value_info(name, onnx_type(value.dtype), [str(d) if isinstance(d, ir.Dim) else d
                                                                        for d in value.shape])


def _inline(ctx, closed, in_names, hint):
    """Flatten ``closed`` (a ClosedJaxpr) reading ``in_names``; emit its nodes through ``ctx``
    (the outer context or a sub-graph's); return the names of its outputs."""
    builder = _Builder(known=set())
    jaxpr = closed.jaxpr
    env = {v: builder.constant(c) for v, c in zip(jaxpr.constvars, closed.consts)}
    outer = {f"<in{i}>": name for i, name in enumerate(in_names)}    # apart from the builder's own names
    env.update(zip(jaxpr.invars, outer))
    builder.inline(jaxpr, env, ())
    outs = [builder.read(v, env) for v in jaxpr.outvars]
    prefix = ctx.fresh(hint) + "/"
    rename = dict(outer)
    for name, array in builder.constants.items():       # an initializer of the outer graph
        array = np.ascontiguousarray(array).reshape(np.shape(array))
        rename[name] = ctx.const(array)
        ctx.values[rename[name]] = ir.Value(rename[name], array.shape, array.dtype)
    rename.update((o.name, prefix + o.name) for node in builder.nodes for o in node.outputs)
    for node in builder.nodes:
        outputs = [ir.Value(rename[o.name], o.shape, o.dtype) for o in node.outputs]
        node = ir.Node(node.op, [rename.get(i, i) for i in node.inputs], outputs, node.params, ctx.source)
        ctx.values.update((o.name, o) for o in outputs)
        if node.op not in ctx.rules:
            raise UnsupportedOpError(f"the {node.op} primitive inside a {hint} has no ONNX rule")
        ctx.rules[node.op](ctx, node, list(node.inputs), [o.name for o in outputs])
    return [rename.get(o, o) for o in outs]


def _subgraph(ctx, name, inputs, emit, out_values):
    """An ONNX GraphProto: ``inputs`` [(name, ir.Value)], its nodes from ``emit(sub)``, which
    returns the output names; each output gets an Identity of its own, typed as ``out_values``."""
    sub = copy.copy(ctx)
    sub.nodes, sub.values = [], dict(ctx.values)
    sub.values.update((n, v) for n, v in inputs)
    results = emit(sub)
    outs = [sub.op("Identity", [r], sub.fresh("out")) for r in results]
    ctx._count = sub._count
    ctx.values.update(sub.values)
    return helper.make_graph(sub.nodes, name, [_value_info(n, v) for n, v in inputs],
                             [_value_info(o, v) for o, v in zip(outs, out_values)])


def cond(ctx, node, ins, outs):
    """``cond``: index ``ins[0]`` picks one of ``branches``, each reading ``ins[1:]``."""
    branches = list(node.params["branches"])
    index, operands = ins[0], ins[1:]

    def chain(c, k):                      # branch k if index == k, else branches k+1.. (the last: any)
        if k == len(branches) - 1:
            return _inline(c, branches[k], operands, "branch")
        is_k = c.op("Equal", [index, c.const(np.asarray(k, np.dtype(c.values[index].dtype)))])
        then = _subgraph(c, c.fresh("then"), [], lambda s: _inline(s, branches[k], operands, "branch"), node.outputs)
        other = _subgraph(c, c.fresh("else"), [], lambda s: chain(s, k + 1), node.outputs)
        names = [c.fresh("if") for _ in node.outputs]
        c.op("If", [is_k], names, then_branch=then, else_branch=other)
        return names

    results = chain(ctx, 0) if len(branches) > 1 else _inline(ctx, branches[0], operands, "branch")
    for r, o in zip(results, outs):
        ctx.op("Identity", [r], o)


def while_loop(ctx, node, ins, outs):
    """``while``: inputs are the cond consts, the body consts, then the initial carry."""
    p = node.params
    nc, nb = int(p["cond_nconsts"]), int(p["body_nconsts"])
    cond_consts, body_consts, init = ins[:nc], ins[nc:nc + nb], ins[nc + nb:]
    first = _inline(ctx, p["cond_jaxpr"], cond_consts + init, "cond")[0]
    carries = [ctx.values[n] for n in init]

    def body(sub):
        names = [n for n, _ in inputs[2:]]
        new = _inline(sub, p["body_jaxpr"], body_consts + names, "body")
        again = _inline(sub, p["cond_jaxpr"], cond_consts + new, "cond")[0]
        return [again] + new

    inputs = [(ctx.fresh("iter"), ir.Value("iter", (), np.dtype(np.int64))),
              (ctx.fresh("cond_in"), ir.Value("cond_in", (), np.dtype(np.bool_)))]
    inputs += [(ctx.fresh("carry"), v) for v in carries]
    graph = _subgraph(ctx, ctx.fresh("loop_body"), inputs, body,
                      [ir.Value("cond_out", (), np.dtype(np.bool_))] + list(node.outputs))
    ctx.op("Loop", ["", first, *init], list(outs), body=graph)

