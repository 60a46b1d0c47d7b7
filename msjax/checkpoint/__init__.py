"""The checkpoint layer: MindSpore-exact .ckpt / safetensors save and load (see FORMAT.md).

>>> msjax.save_checkpoint(net, "net.ckpt"); msjax.load_checkpoint("net.ckpt")
"""
from msjax.checkpoint.convert import ckpt_to_safetensors, safetensors_to_ckpt
from msjax.checkpoint.io import AsyncSave
from msjax.checkpoint.matching import load_param_into_net
from msjax.checkpoint.serialization import load_checkpoint, load_checkpoint_async, save_checkpoint, wait_async_save

__all__ = ["save_checkpoint", "load_checkpoint", "load_checkpoint_async", "load_param_into_net",
           "wait_async_save", "ckpt_to_safetensors", "safetensors_to_ckpt"]
