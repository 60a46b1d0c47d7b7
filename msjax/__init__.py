"""msjax: MindSpore's model save/load workflow on JAX.

>>> import msjax
>>> msjax.Tensor([1.0, 2.0]).asnumpy()
array([1., 2.], dtype=float32)

``import msjax`` is lazy: each public name below is imported on first use, so a tool that only
reads checkpoint files (``msjax inspect``) never pays for jax. ``dir(msjax)`` and ``__all__`` list
every name; ``from msjax import *`` imports them all.
"""
from msjax import checkpoint as _checkpoint       # lazy itself: names only, nothing imported yet
from msjax._lazy import attribute as _attribute

__version__ = "0.1.0"

_DTYPES = ("bfloat16", "bool_", "complex64", "complex128", "float16", "float32", "float64", "int8",
           "int16", "int32", "int64", "qint4x2", "uint8", "uint16", "uint32", "uint64")

#: public name -> the module it comes from; a name equal to the module's last part is the module.
#: A new top-level name is one line here.
_LAZY = {
    **dict.fromkeys(_DTYPES, "msjax.common.dtype"),
    "set_seed": "msjax.common.initializer",
    "Parameter": "msjax.common.tensor",
    "Tensor": "msjax.common.tensor",
    "GRAPH_MODE": "msjax.context",
    "PYNATIVE_MODE": "msjax.context",
    "get_context": "msjax.context",
    "set_context": "msjax.context",
    "dataset": "msjax.dataset",
    "models": "msjax.models",
    "nn": "msjax.nn",
    "ops": "msjax.ops",
    "train": "msjax.train",
    "Model": "msjax.train",
    **dict.fromkeys(_checkpoint.__all__, "msjax.checkpoint"),    # save_checkpoint, load_checkpoint, ...
    **dict.fromkeys(("set_auto_parallel_context", "get_auto_parallel_context", "reset_auto_parallel_context",
                     "ParallelMode"), "msjax.common.parallel"),
    "communication": "msjax.communication",
    "export": "msjax.graph_io",
    "load": "msjax.graph_io",
}

__all__ = list(_LAZY)


def __getattr__(name):
    return _attribute(__name__, _LAZY, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
