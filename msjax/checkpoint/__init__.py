"""The checkpoint layer: MindSpore-exact .ckpt / safetensors save and load (see FORMAT.md).

>>> msjax.save_checkpoint(net, "net.ckpt"); msjax.load_checkpoint("net.ckpt")

Lazy: each name is imported on first use, so the numpy-level modules (``raw``, ``ckpt_format``,
``safetensors_format``, ``torch_format``) load without jax.
"""
from msjax._lazy import attribute as _attribute

#: public name -> the module it comes from (a new name is one line here, and one in ``__all__``)
_LAZY = {
    "ckpt_to_safetensors": "msjax.checkpoint.convert",
    "safetensors_to_ckpt": "msjax.checkpoint.convert",
    "AsyncSave": "msjax.checkpoint.io",
    "load_param_into_net": "msjax.checkpoint.matching",
    "load_param_into_nnx": "msjax.checkpoint.nnx_interop",
    "nnx_parameters": "msjax.checkpoint.nnx_interop",
    "load_checkpoint": "msjax.checkpoint.serialization",
    "load_checkpoint_async": "msjax.checkpoint.serialization",
    "save_checkpoint": "msjax.checkpoint.serialization",
    "wait_async_save": "msjax.checkpoint.serialization",
}

__all__ = ["save_checkpoint", "load_checkpoint", "load_checkpoint_async", "load_param_into_net",
           "wait_async_save", "ckpt_to_safetensors", "safetensors_to_ckpt", "load_param_into_nnx", "nnx_parameters"]


def __getattr__(name):
    return _attribute(__name__, _LAZY, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
