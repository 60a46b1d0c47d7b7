"""``msjax.train.serialization``: MindSpore's ``mindspore.train.serialization`` import path.

Old MindSpore code imports the save/load/export API from here; these are the same objects as
``msjax.save_checkpoint``, ``msjax.export``, ...

>>> from msjax.train.serialization import load_checkpoint, load_param_into_net
"""
from msjax.checkpoint import (ckpt_to_safetensors, load_checkpoint, load_checkpoint_async, load_param_into_net,
                              safetensors_to_ckpt, save_checkpoint)
from msjax.checkpoint.serialization import ParamDictFuture  # noqa: F401  (MindSpore's class, importable here)
from msjax.graph_io import export, load

__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net", "export", "load", "load_checkpoint_async",
           "ckpt_to_safetensors", "safetensors_to_ckpt"]
