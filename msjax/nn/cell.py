"""``Cell``: MindSpore's network base class on ``flax.nnx.Module``.

Attributes keep definition order (``vars(self)``), which is MindSpore's parameter order; nnx paths
serve only as keys. In GRAPH_MODE a call runs ``construct`` inside ``jax.jit``: the cell is flattened
into a graphdef (its structure, hashable) and its Variables, one jitted function is cached per
graphdef, and jax caches one trace per input signature. State changes made by ``construct``
(BatchNorm statistics, dropout RNG counters) are written back into the same Variables after the
call. The flattening (the graph walk: ~30 ms for ResNet50) is cached per cell and redone only after
some Cell's attributes changed (``_structure_version``); ``TrainOneStepCell`` uses the same path
with its state buffers donated. With ``set_context(enable_compile_cache=True)`` compiled programs
are also kept on disk under a key computed before tracing (``msjax/nn/_compile_cache.py``).
"""
from __future__ import annotations

import collections
import contextlib
import threading
import warnings
import weakref
from collections import OrderedDict
from functools import partial
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

from msjax import context
from msjax.common.parameter import assign_value
from msjax.common.tensor import Parameter, Tensor, unwrap
from msjax.nn import _compile_cache
from msjax.nn._jit_level import LeveledJit
from msjax.nn._cell_flags import CellFlags
from msjax.nn._param_map import ParamMap

#: traces per Cell class name; a test reads it to prove one trace per input signature
TRACE_COUNTS: collections.Counter = collections.Counter()

_tracing = threading.local()
_jitted = {}
#: bumped by every attribute set or delete on any Cell; a cached flattening of a cell graph
#: (``_flat_cache``) is valid while this number is unchanged
_structure_version = 0


def _is_dynamic(x):
    return isinstance(x, (jax.Array, np.ndarray, Tensor, Parameter, np.generic))


def _wrap_outputs(tree):
    """Wrap concrete arrays (device or host: a PYNATIVE construct on host values computes numpy)
    as Tensor; tracers (a call under jax.grad/vmap) stay raw arrays."""
    return jax.tree.map(lambda x: Tensor(x) if isinstance(x, (jax.Array, np.ndarray))
                        and not isinstance(x, jax.core.Tracer) else x, tree)


def _run_flat(graphdef, changed_only, static, leaves, dynamic):
    """The function jax.jit compiles: the cell rebuilt from its flat leaves runs construct; returns
    the outputs and the new leaves in the same order (the whole State if construct changed the
    cell's structure).

    With ``changed_only`` the new leaves are ``{index: leaf}`` for the leaves construct replaced:
    an output leaf is a buffer XLA writes, so returning an unchanged parameter copies it (an eval
    forward of ResNet-50 spent ~25% of its time copying its 94 MB of weights). Donated calls
    return every leaf: a donated input that is no output would be lost.
    """
    leaves = list(leaves)
    cell = nnx.merge(graphdef, leaves)
    out = _run_cell(cell, static, dynamic)
    new_graphdef, new_leaves = nnx.graphlib.flatten(cell, with_paths=False)
    if new_graphdef != graphdef:
        return out, nnx.state(cell)
    if changed_only:
        return out, {i: new for i, (new, old) in enumerate(zip(new_leaves, leaves)) if new is not old}
    return out, new_leaves


def _run_cell(cell, static, dynamic):
    """Run ``cell.construct`` on the call's static leaves and dynamic arrays (while tracing)."""
    TRACE_COUNTS[type(cell).__name__] += 1
    leaves, treedef = static
    it = iter(dynamic)
    args, kwargs = jax.tree.unflatten(treedef, [next(it) if leaf is _DYNAMIC else leaf for leaf in leaves])
    _tracing.depth = getattr(_tracing, "depth", 0) + 1
    try:
        out = cell.construct(*args, **kwargs)
    finally:
        _tracing.depth -= 1
    return unwrap(out)


@contextlib.contextmanager
def inline_calls(scopes=None):
    """Run cell calls inline (no nested jit) while tracing; used by ``exporters.capture``.

    ``scopes`` maps ``id(cell)`` to its dotted path; each such cell's ``construct`` then runs under
    ``jax.named_scope(path)``, so jaxpr equations name the layer that produced them.
    """
    previous = getattr(_tracing, "scopes", None)
    _tracing.depth = getattr(_tracing, "depth", 0) + 1
    _tracing.scopes = scopes
    try:
        yield
    finally:
        _tracing.depth -= 1
        _tracing.scopes = previous


def _under_transform(args, kwargs):
    """True when called on tracers (inside the user's jax.grad/jit/vmap): run inline, not nested-jit."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(unwrap((args, kwargs))))


def _is_array(value):
    return not isinstance(value, Parameter) and isinstance(value, (Tensor, jax.Array, np.ndarray))


def _update_in_place(param, value):
    """MindSpore's ``self.p = value`` where ``p`` is a Parameter: the Parameter keeps its identity
    and takes the value. Inside ``construct`` that is an ``Assign`` (GRAPH_MODE writes it back after
    the call, ``export`` keeps it): cast to the parameter's dtype, same shape; outside, it is
    ``set_data`` (cast to the parameter's dtype)."""
    if getattr(_tracing, "depth", 0):
        param.set_value(assign_value("Assign", param, value))
    else:
        array = unwrap(value)
        dtype = np.dtype(param.get_value().dtype)
        param.set_value(array if array.dtype == dtype else array.astype(dtype))


class _Dynamic:
    def __repr__(self):
        return "<dynamic>"


_DYNAMIC = _Dynamic()


def _compiled(graphdef, donate):
    """One jitted function per (graphdef, donate), compiled as ``jit_level`` picks
    (``_jit_level``); the graphdef is hashed once per cache fill."""
    fn = _jitted.get((graphdef, donate))
    if fn is None:
        fn = LeveledJit(partial(_run_flat, graphdef, not donate), static_argnums=(0,),
                        donate_argnums=(1,) if donate else ())
        _jitted[(graphdef, donate)] = fn
    return fn


class _Flat(NamedTuple):
    """A cell's graph, flattened once: valid while ``_structure_version`` is unchanged."""
    version: int
    donate: bool
    variables: list     # the Variable objects themselves (or plain arrays, see ``paths``)
    paths: tuple        # their nnx paths when some leaf is a plain array, else ()
    fn: object
    graphdef: object
    programs: dict      # (static, signature) -> compiled program, with the compile cache on


_flat_cache = weakref.WeakKeyDictionary()  # Cell -> _Flat
#: Cell -> (static, ((shape, dtype), ...)) of its last compiled (GRAPH_MODE) call: the input
#: signature MindSpore keeps as the compiled graph, read by ``last_call_inputs``
_last_call = weakref.WeakKeyDictionary()


def last_call_inputs(cell):
    """``(args, kwargs)`` with the input signature of ``cell``'s last compiled call (zero Tensors
    of its arrays' shapes and dtypes, its other arguments as given), or None when it never ran
    compiled (never called, or only in PYNATIVE_MODE): MindSpore then has no compiled graph.

    ``ModelCheckpoint`` writes graph.meta from it when the run context carries no batch.
    """
    record = _last_call.get(cell)
    if record is None:
        return None
    (leaves, treedef), signature = record
    arrays = iter(signature)
    filled = [Tensor(np.zeros(*next(arrays))) if leaf is _DYNAMIC else leaf for leaf in leaves]
    return jax.tree.unflatten(treedef, filled)


def _split_args(args, kwargs):
    """(static, dynamic): the call's hashable structure and its arrays, in order."""
    leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=lambda x: isinstance(x, (Tensor, Parameter)))
    dynamic = tuple(unwrap(x) for x in leaves if _is_dynamic(x))
    static = (tuple(_DYNAMIC if _is_dynamic(x) else x for x in leaves), treedef)
    return static, dynamic


def _flat_call(cell, static, dynamic, *, donate):
    """Run ``cell.construct`` jitted on its cached flat leaves; write the new leaves back into the
    cell's own Variables and return the raw outputs. ``donate`` donates the state buffers."""
    flat = _flat_cache.get(cell)
    if flat is None or flat.version != _structure_version or flat.donate != donate:
        version = _structure_version
        graphdef, state = nnx.graphlib.flatten(cell)
        variables = list(state.leaves)
        raw = any(not isinstance(v, nnx.Variable) for v in variables)
        paths = tuple(state.paths) if raw else ()
        flat = _flat_cache[cell] = _Flat(version, donate, variables, paths, _compiled(graphdef, donate), graphdef, {})
    values = [v.get_raw_value() if isinstance(v, nnx.Variable) else v for v in flat.variables]
    if not flat.paths:   # host arrays go to the device once, into the Variables (jit re-sends them on every call)
        for i in [i for i, v in enumerate(values) if type(v) is np.ndarray]:
            values[i] = jax.device_put(values[i])
            flat.variables[i].set_raw_value(values[i], _unsafe_bypass_check=True)
    directory = context.compile_cache_dir()   # on: a persistent cache keyed before tracing (_compile_cache)
    run = partial(flat.fn, static) if directory is None else partial(_compile_cache.call, flat, static, directory)
    with warnings.catch_warnings():
        if donate:
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        out, new = run(values, dynamic)
    if type(new) is dict:          # not donated: only the leaves construct replaced
        changed = [(flat.variables[i], flat.paths[i] if flat.paths else None, v) for i, v in new.items()]
    elif isinstance(new, list):
        changed = list(zip(flat.variables, flat.paths or [None] * len(new), new))
    else:                          # construct changed the structure: write the State, walk again
        nnx.update(cell, new)
        _flat_cache.pop(cell, None)
        return out
    if flat.paths:   # plain-array attributes are replaced by path (this also invalidates the cache)
        if changed:
            nnx.update(cell, nnx.State.from_flat_path({path: v for _, path, v in changed}))
    else:
        for variable, _, value in changed:
            variable.set_raw_value(value, _unsafe_bypass_check=True)
    return out


class Cell(CellFlags, nnx.Module):
    """Base class of every network: override ``construct``; call the cell to run it.

    >>> class Net(Cell):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = Parameter(np.ones(3, np.float32))
    ...     def construct(self, x):
    ...         return x * self.w
    >>> Net()(Tensor(np.ones(3, np.float32))).asnumpy()
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, auto_prefix=True, flags=None):
        object.__setattr__(self, "_auto_prefix", auto_prefix)
        self.training = False
        if flags:
            self.add_flags(**flags)

    # ---------------------------------------------------------------- naming
    def __setattr__(self, name, value):
        global _structure_version
        current = vars(self).get(name)
        if isinstance(current, Parameter) and (value is current or _is_array(value)):
            if value is not current:           # (value is current: `self.p op= x` updated p itself)
                _update_in_place(current, value)   # the structure is unchanged: no version bump
            return
        _structure_version += 1
        if isinstance(value, Parameter) and value.name == "Parameter":
            value.name = name
        elif isinstance(value, Cell) and getattr(self, "_auto_prefix", True) and not name.startswith("_pytree"):
            value.update_parameters_name(name + ".")
        if isinstance(value, (Parameter, Cell)):
            order = vars(self).get("_cell_order", ())
            if name not in order:
                # nnx.merge rebuilds attributes sorted by name; this static tuple keeps definition order
                super().__setattr__("_cell_order", order + (name,))
            value = nnx.data(value)  # may replace a static placeholder such as `self.bias = None`
        super().__setattr__(name, value)

    def __delattr__(self, name):
        global _structure_version
        _structure_version += 1
        order = vars(self).get("_cell_order", ())
        if name in order:
            super().__setattr__("_cell_order", tuple(n for n in order if n != name))
        super().__delattr__(name)

    def update_parameters_name(self, prefix="", recurse=True):
        """Give every parameter the name ``prefix + <its dotted path in this cell>``."""
        for path, param in self.parameters_and_names(expand=recurse):
            param.name = prefix + path

    # ---------------------------------------------------------------- walks
    def _children(self):
        """(attribute, value) pairs in definition order: Parameters, then Cells, as MindSpore."""
        rank = {name: i for i, name in enumerate(vars(self).get("_cell_order", ()))}
        items = sorted(((k, v) for k, v in vars(self).items() if not k.startswith("_pytree")),
                       key=lambda kv: rank.get(kv[0], len(rank)))
        params = [(k, v) for k, v in items if isinstance(v, Parameter)]
        cells = [(k, v) for k, v in items if isinstance(v, Cell)]
        return params, cells

    def parameters_and_names(self, name_prefix="", expand=True):
        """Yield ``(dotted_name, Parameter)`` in MindSpore's order, each parameter once."""
        seen = set()
        for cell_name, cell in (self.cells_and_names(name_prefix) if expand else [(name_prefix, self)]):
            params, _ = cell._children()
            for attr, param in params:
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{cell_name}.{attr}" if cell_name else attr), param

    def cells_and_names(self, cell_name=""):
        """Yield ``(dotted_name, Cell)`` for this cell and every cell below it, depth first."""
        seen = set()

        def walk(cell, prefix):
            if id(cell) in seen:
                return
            seen.add(id(cell))
            yield prefix, cell
            for attr, child in cell._children()[1]:
                yield from walk(child, f"{prefix}.{attr}" if prefix else attr)

        yield from walk(self, cell_name)

    def name_cells(self):
        """The direct sub-cells by attribute name."""
        return OrderedDict(self._children()[1])

    def cells(self):
        return list(self.name_cells().values())

    def get_parameters(self, expand=True):
        for _, param in self.parameters_and_names(expand=expand):
            yield param

    def trainable_params(self, recurse=True):
        return [p for p in self.get_parameters(expand=recurse) if p.requires_grad]

    def untrainable_params(self, recurse=True):
        return [p for p in self.get_parameters(expand=recurse) if not p.requires_grad]

    def parameters_dict(self, recurse=True):
        """``OrderedDict`` from each parameter's ``.name`` to the Parameter."""
        return OrderedDict((p.name, p) for p in self.get_parameters(expand=recurse))

    def insert_param_to_cell(self, param_name, param, check_name_contain_dot=True):
        if check_name_contain_dot and "." in param_name:
            raise KeyError(f"parameter name {param_name!r} must not contain '.'")
        if not isinstance(param, Parameter):
            raise TypeError(f"insert_param_to_cell needs a Parameter, got {type(param).__name__}")
        if param.name == "Parameter":
            param.name = param_name
        setattr(self, param_name, param)

    def insert_child_to_cell(self, child_name, child_cell):
        setattr(self, child_name, child_cell)

    # ---------------------------------------------------------------- modes
    def set_train(self, mode=True):
        """Put this cell and every sub-cell in training (True) or evaluation (False) mode."""
        for _, cell in self.cells_and_names():
            cell.training = bool(mode)
        return self

    @property
    def phase(self):
        return "train" if self.training else "predict"

    def set_grad(self, requires_grad=True):
        return self

    # ---------------------------------------------------------------- running
    def construct(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define construct()")

    def __call__(self, *args, **kwargs):
        depth = getattr(_tracing, "depth", 0)
        if depth or context.get_context("mode") == context.PYNATIVE_MODE or _under_transform(args, kwargs):
            scope = (getattr(_tracing, "scopes", None) or {}).get(id(self))
            # inline: sub-cells (and every cell in PYNATIVE_MODE) see and return raw arrays
            _tracing.depth = depth + 1
            try:
                with jax.named_scope(scope) if scope else contextlib.nullcontext():
                    out = self.construct(*unwrap(args), **unwrap(kwargs))
            finally:
                _tracing.depth = depth
            return out if depth else _wrap_outputs(out)
        return self._call_compiled(args, kwargs)

    #: donate the state buffers to the compiled call (``TrainOneStepCell``: its old state is dead)
    _donate_state = False

    def _call_compiled(self, args, kwargs):
        static, dynamic = _split_args(args, kwargs)
        out = _wrap_outputs(_flat_call(self, static, dynamic, donate=self._donate_state))
        _last_call[self] = (static, tuple((x.shape, x.dtype) for x in dynamic))
        return out

    def init_parameters_data(self, auto_parallel_mode=False):
        """MindSpore's ``init_parameters_data``: every msjax Parameter holds its data from the
        start, so each one maps to itself. Returns a mapping original -> initialized Parameter
        (keyed by identity: Parameters compare element-wise, so they are not dict keys)."""
        return ParamMap(self.get_parameters())

    def __repr__(self):
        children = ", ".join(self.name_cells())
        return f"{type(self).__name__}<{children}>" if children else f"{type(self).__name__}<>"
