"""``msjax.train.callback``: MindSpore's callbacks (``Callback``, ``RunContext``, ``ModelCheckpoint``, ...)."""
from msjax.train.callback._callback import Callback, CallbackManager, InternalCallbackParam, RunContext
from msjax.train.callback._checkpoint import CheckpointConfig, ModelCheckpoint
from msjax.train.callback._monitors import History, LambdaCallback, LossMonitor, ProgressBar, TimeMonitor

__all__ = ["Callback", "RunContext", "CheckpointConfig", "ModelCheckpoint", "LossMonitor", "TimeMonitor",
           "History", "LambdaCallback", "ProgressBar"]
