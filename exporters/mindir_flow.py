"""Control flow of a MINDIR graph: its sub-graphs (``ModelProto.functions``), run with jax.

What MindSpore 2.10 writes for ``if``/``while`` on a tensor condition (``IfNet``, ``WhileNet`` in
tests/mindir_zoo_nets.py): each branch and loop part is a sub-graph; ``Partial(graph, *args)``
binds its arguments (parameters and the monad included: sub-graphs have no free variables),
``Switch(cond, a, b)`` picks one of two closures, and a node whose op_type is ``REF::<name>``
calls a sub-graph by name or the closure a node defined (``CALL`` here, the callee first).
A ``while`` is tail recursion: the header graph ends in ``Switch(cond, body, after)`` called, and
the body calls the header again (directly or through the graph after an inner ``if``).

Here a Switch on a concrete condition picks its branch in python; on a traced one it becomes
``jax.lax.cond``. A loop header (a graph in a call cycle whose Switch has one branch in the cycle)
becomes ``jax.lax.while_loop`` over its arguments: the body runs until it calls the header, and
those arguments are the next state. A ``break``/``return`` inside a loop is not supported.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .mindir_format import MONAD
from msjax.errors import ExportError

__all__ = ["CALL", "FLOW_PRIMS", "SubGraph", "Flow"]

#: the prim of a node that calls a sub-graph or a closure; its first input is the callee
CALL = "<call>"
FLOW_PRIMS = frozenset({CALL, "Partial", "Switch"})


@dataclasses.dataclass(frozen=True)
class SubGraph:
    name: str
    inputs: tuple        # input names
    outputs: tuple
    constants: dict
    ops: list


@dataclasses.dataclass(frozen=True)
class Closure:
    graph: str
    args: tuple = ()


@dataclasses.dataclass(frozen=True)
class Branch:
    """A Switch on a traced condition: which closure runs is decided by ``lax.cond``."""
    cond: object
    a: object
    b: object


@dataclasses.dataclass(frozen=True)
class Continue:
    """What a loop body returns instead of calling its header: the next loop state."""
    args: tuple


def _dynamic(v):
    return isinstance(v, (jax.Array, np.ndarray, np.generic, int, float)) and not isinstance(v, str)


class Flow:
    """Walks node lists; ``apply(op, args)`` evaluates one primitive (from_mindir._apply)."""

    def __init__(self, functions, constants, apply, file_name):
        """``constants``: the main graph's Constant nodes. A Constant name is unique in the model,
        and any graph may read one another graph defines."""
        self.functions = functions
        self.constants = dict(constants)
        for sub in functions.values():
            self.constants.update(sub.constants)
        self.apply, self.file_name = apply, file_name
        self.headers = _loop_headers(functions)

    def error(self, message):
        return ExportError(message, file=self.file_name)

    def bind(self, env):
        for name in self.functions:
            env.setdefault(name, Closure(name))
        return env

    def walk(self, ops, env, *, loop=None, choose=None, stop=None, on_update=None):
        """Evaluate ``ops`` into ``env``; ``choose`` maps a Switch's output to the branch (1 or 2)
        to take; ``stop`` ends the walk before that op; ``on_update(op)`` follows each write."""
        for op in ops:
            if op is stop:
                break
            args = [env[i] for i in op.inputs]
            if op.prim == "Partial":
                head = args[0]
                if not isinstance(head, Closure):
                    raise self.error(f"node {op.output}: Partial of {op.inputs[0]!r}, not a graph")
                env[op.output] = Closure(head.graph, head.args + tuple(args[1:]))
            elif op.prim == "Switch":
                env[op.output] = self.switch(args, (choose or {}).get(op.output))
            elif op.prim == CALL:
                env[op.output] = self.call(args[0], tuple(args[1:]), loop)
            else:
                env[op.output] = self.apply(op, args)
                if on_update is not None:
                    on_update(op)
        return env

    def switch(self, args, chosen):
        cond, a, b = args[:3]
        if chosen is not None:
            return args[chosen]
        if isinstance(cond, jax.core.Tracer):
            return Branch(cond, a, b)
        return a if bool(np.asarray(cond)) else b

    def call(self, callee, args, loop=None):
        if isinstance(callee, Branch):
            return self.cond(callee, args, loop)
        if not isinstance(callee, Closure):
            raise self.error(f"a call of {type(callee).__name__}, which is not a graph")
        args = callee.args + args
        if loop is not None and callee.graph == loop:
            return Continue(args)
        if callee.graph in self.headers:
            return self.loop(callee.graph, args)
        return self.run(callee.graph, args, loop=loop)

    def run(self, name, args, **walk):
        sub = self.functions[name]
        env = self.enter(sub, args)
        self.walk(sub.ops, env, **walk)
        return env[sub.outputs[0]]

    def enter(self, sub, args):
        if len(args) != len(sub.inputs):
            raise self.error(f"sub-graph {sub.name} takes {len(sub.inputs)} argument(s), got {len(args)}")
        env = self.bind({**self.constants, **sub.constants})
        env.update(zip(sub.inputs, args))
        return env

    def cond(self, branch, args, loop):
        """``lax.cond`` over two closures; monads (no jax type) leave as None."""
        def side(closure):
            def run():
                out = self.call(closure, args, loop)
                if isinstance(out, Continue):
                    raise self.error("a loop continues from inside an if (break/continue in a while "
                                     "loop) is not supported")
                return jax.tree_util.tree_map(lambda v: None if v is MONAD else v, out)
            return run
        pred = jnp.asarray(branch.cond).astype(bool).reshape(())
        return lax.cond(pred, side(branch.a), side(branch.b))

    def loop(self, name, state):
        """A loop header's call as ``lax.while_loop`` over its array arguments."""
        sub, switch, call, body = self.headers[name]
        exit_ = 3 - body
        dyn = [i for i, v in enumerate(state) if _dynamic(v)]

        def full(values):
            out = list(state)
            for i, v in zip(dyn, values):
                out[i] = v
            return out

        def header(values):
            return self.walk(sub.ops, self.enter(sub, full(values)), stop=switch)

        def cond_fn(values):
            c = jnp.asarray(header(values)[switch.inputs[0]]).astype(bool).reshape(())
            return c if body == 1 else jnp.logical_not(c)

        def body_fn(values):
            env = header(values)
            extra = tuple(env[i] for i in call.inputs[1:])
            nxt = self.call(env[switch.inputs[body]], extra, loop=name)
            if not isinstance(nxt, Continue) or len(nxt.args) != len(state):
                raise self.error(f"the loop body of {name} does not end by calling {name} again")
            return tuple(jnp.asarray(nxt.args[i]).astype(v.dtype) for i, v in zip(dyn, values))

        init = tuple(jnp.asarray(state[i]) for i in dyn)
        final = lax.while_loop(cond_fn, body_fn, init)
        env = self.walk(sub.ops, self.enter(sub, full(final)), choose={switch.output: exit_})
        return env[sub.outputs[0]]


def _callees(sub):
    return {name for op in sub.ops if op.prim in ("Partial", CALL) for name in op.inputs[:1]}


def _loop_headers(functions):
    """name -> (sub-graph, its Switch, the call of that Switch, the branch (1/2) in the cycle)."""
    edges = {name: _callees(sub) & set(functions) for name, sub in functions.items()}

    def reaches(start, target):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt == target:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    headers = {}
    for name, sub in functions.items():
        if not reaches(name, name):
            continue
        by_output = {op.output: op for op in sub.ops}
        for call in sub.ops:
            switch = by_output.get(call.inputs[0]) if call.prim == CALL and call.inputs else None
            if switch is None or switch.prim != "Switch":
                continue
            branches = [_graph_of(by_output, i) for i in switch.inputs[1:3]]
            cyclic = [b is not None and (b == name or reaches(b, name)) for b in branches]
            if cyclic.count(True) == 1:
                headers[name] = (sub, switch, call, 1 + cyclic.index(True))
    return headers


def _graph_of(by_output, name):
    """The sub-graph a Switch branch (a Partial's output or a graph name) runs."""
    op = by_output.get(name)
    return op.inputs[0] if op is not None and op.prim == "Partial" else (None if op else name)
