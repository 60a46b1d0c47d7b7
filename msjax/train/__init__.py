"""``msjax.train``: ``Model``, callbacks, ``ModelCheckpoint`` and metrics (MindSpore's ``mindspore.train``)."""
from msjax.train import metrics, serialization
from msjax.train.callback import *  # noqa: F401,F403
from msjax.train.callback import __all__ as _callback_all
from msjax.train.metrics import *  # noqa: F401,F403 - every metric class, names, get_metric_fn, auc
from msjax.train.metrics import __all__ as _metrics_all
from msjax.train.model import Model
from msjax.train.serialization import (ckpt_to_safetensors, export, load, load_checkpoint, load_checkpoint_async,
                                       load_param_into_net, safetensors_to_ckpt, save_checkpoint)

__all__ = ["Model", "metrics", *_callback_all, *_metrics_all,
           # MindSpore's ``mindspore.train`` also carries the save/load/export API
           "serialization", "save_checkpoint", "load_checkpoint", "load_param_into_net", "export", "load",
           "load_checkpoint_async", "ckpt_to_safetensors", "safetensors_to_ckpt"]

