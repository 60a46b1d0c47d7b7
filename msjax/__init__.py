"""msjax: MindSpore's model save/load workflow on JAX.

>>> import msjax
>>> msjax.Tensor([1.0, 2.0]).asnumpy()
array([1., 2.], dtype=float32)
"""
from msjax.common.dtype import (bfloat16, bool_, complex64, complex128, float16, float32, float64, int8,
                                int16, int32, int64, qint4x2, uint8, uint16, uint32, uint64)
from msjax.common.initializer import set_seed
from msjax.common.tensor import Parameter, Tensor
from msjax.context import GRAPH_MODE, PYNATIVE_MODE, get_context, set_context
from msjax import dataset, models, nn, ops, train
from msjax.train import Model
from msjax.checkpoint import *  # noqa: F401,F403  (save_checkpoint, load_checkpoint, ...)
from msjax.graph_io import export, load

__version__ = "0.1.0"
