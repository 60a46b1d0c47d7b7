"""Which XLA options a cell program compiles with: MindSpore's ``jit_config={"jit_level": ...}``.

XLA:CPU emits each fusion through its MLIR fusion emitters by default. They give the best code for
large elementwise fusions, but each kernel costs a few milliseconds of emitting before LLVM starts,
which dominates small programs: LeNet5's train step compiles in ~0.37 s without them against
~0.7 s with them (45 kernels). Measured on the train steps of this repository's networks (2 cores,
alternating processes; benchmarks/README.md, "Compile time"), compile time with the fusion emitters
off, against on:

- LeNet5 (186 equations), a two-conv BatchNorm CNN (251), a 2-layer MLP (60): 25-45% less, the
  step the same within noise;
- a one-block ViT (500): 30-40% less, the step up to 30% slower;
- ResNet-18 (1799): ~10% less; ViT-6 (1914), MobileNetV2 (3858), ResNet-50 (4343): 20-50% more.

So with ``jit_level`` left at ``""`` (MindSpore's "the framework chooses"), a program whose jaxpr
has at most ``SMALL_PROGRAM_EQNS`` top-level equations compiles with ``FAST_COMPILE`` and every
larger one with XLA's defaults; ``"O0"`` uses ``FAST_COMPILE`` for every program and ``"O1"`` /
``"O2"`` none. The choice is made once per (program, static arguments) from the first call's
trace, which ``jax.jit`` then reuses, so deciding costs no second trace. Other backends than CPU,
and calls on tracers (a cell inside the caller's ``jax.grad``: a nested jit takes no compiler
options), always compile with the defaults.
"""
from __future__ import annotations

import jax

from msjax import context

#: most top-level jaxpr equations of a program that ``jit_level=""`` compiles with ``FAST_COMPILE``
SMALL_PROGRAM_EQNS = 400
#: XLA:CPU options of a fast-compiling program (the classic elemental emitters)
FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False}


def level():
    return context.get_context("jit_config")["jit_level"]


class LeveledJit:
    """``jax.jit(fun, **jit_kwargs)`` that compiles each program with the options ``jit_level``
    picks; called and traced like the jitted function (``fn(*args)``, ``fn.trace(*args)``).
    ``fun``'s first argument is static (a cell's call structure): the choice is kept per value."""

    def __init__(self, fun, **jit_kwargs):
        self._default = jax.jit(fun, **jit_kwargs)
        self._fast = jax.jit(fun, compiler_options=FAST_COMPILE, **jit_kwargs)
        self._picked = {}   # static argument -> the jitted function jit_level "" picked for it

    def _pick(self, args):
        jit_level = level()
        if jit_level in ("O1", "O2") or jax.default_backend() != "cpu":
            return self._default
        if jit_level == "O0":
            return self._fast
        key = args[0]
        fn = self._picked.get(key)
        if fn is None:
            eqns = len(self._default.trace(*args).jaxpr.eqns)
            fn = self._picked[key] = self._fast if eqns <= SMALL_PROGRAM_EQNS else self._default
        return fn

    def __call__(self, *args):
        fn = self._pick(args)
        if fn is self._fast and any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args[1:])):
            fn = self._default   # inside the caller's transformation: a nested jit takes no compiler options
        return fn(*args)

    def trace(self, *args):
        return self._pick(args).trace(*args)
