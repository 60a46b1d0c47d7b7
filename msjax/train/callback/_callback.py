"""MindSpore's callback protocol: ``Callback``, ``RunContext`` and the ``cb_params`` dict.

New-style hooks (``on_train_begin``, ``on_train_epoch_end``, ...) call the legacy ones
(``begin``, ``epoch_end``, ...) by default, so either kind of override works.

>>> class Stop(Callback):
...     def on_train_step_end(self, run_context):
...         if run_context.original_args().cur_step_num == 3:
...             run_context.request_stop()
"""
from __future__ import annotations

from contextlib import ExitStack

import numpy as np

__all__ = ["Callback", "RunContext", "CallbackManager", "InternalCallbackParam"]


class Callback:
    """Base class of training/eval callbacks (every hook is a no-op)."""

    def __enter__(self):
        return self

    def __exit__(self, *err):
        return None

    # legacy hooks, shared by train and eval
    def begin(self, run_context):
        """Called once before training/eval (legacy alias)."""

    def epoch_begin(self, run_context):
        """Called before each epoch (legacy alias)."""

    def epoch_end(self, run_context):
        """Called after each epoch (legacy alias)."""

    def step_begin(self, run_context):
        """Called before each step (legacy alias)."""

    def step_end(self, run_context):
        """Called after each step (legacy alias)."""

    def end(self, run_context):
        """Called once after training/eval (legacy alias)."""

    def on_train_begin(self, run_context):
        self.begin(run_context)

    def on_train_epoch_begin(self, run_context):
        self.epoch_begin(run_context)

    def on_train_epoch_end(self, run_context):
        self.epoch_end(run_context)

    def on_train_step_begin(self, run_context):
        self.step_begin(run_context)

    def on_train_step_end(self, run_context):
        self.step_end(run_context)

    def on_train_end(self, run_context):
        self.end(run_context)

    def on_eval_begin(self, run_context):
        self.begin(run_context)

    def on_eval_epoch_begin(self, run_context):
        self.epoch_begin(run_context)

    def on_eval_epoch_end(self, run_context):
        self.epoch_end(run_context)

    def on_eval_step_begin(self, run_context):
        self.step_begin(run_context)

    def on_eval_step_end(self, run_context):
        self.step_end(run_context)

    def on_eval_end(self, run_context):
        self.end(run_context)


_HOOKS = ("begin", "epoch_begin", "epoch_end", "step_begin", "step_end", "end",
          "on_train_begin", "on_train_epoch_begin", "on_train_epoch_end", "on_train_step_begin",
          "on_train_step_end", "on_train_end", "on_eval_begin", "on_eval_epoch_begin", "on_eval_epoch_end",
          "on_eval_step_begin", "on_eval_step_end", "on_eval_end")


def _fan_out(hook):
    def method(self, run_context):
        for cb in self._callbacks:
            getattr(cb, hook)(run_context)
    method.__name__ = hook
    return method


class CallbackManager(Callback):
    """Runs a list of callbacks in order; entered as one context manager."""

    def __init__(self, callbacks):
        self._callbacks, self._stack = [], None
        if isinstance(callbacks, Callback):
            self._callbacks.append(callbacks)
        elif isinstance(callbacks, (list, tuple)):
            for cb in callbacks:
                if not isinstance(cb, Callback):
                    raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
                self._callbacks.append(cb)
        elif callbacks is not None:
            raise TypeError(f"callbacks must be a Callback or a list of Callback, got {type(callbacks).__name__}")

    def __enter__(self):
        if self._stack is None:
            self._stack = ExitStack().__enter__()
            self._callbacks = [self._stack.enter_context(cb) or cb for cb in self._callbacks]
        return self

    def __exit__(self, *err):
        stack, self._stack = self._stack, None
        return stack.__exit__(*err) if stack is not None else None


for _hook in _HOOKS:
    setattr(CallbackManager, _hook, _fan_out(_hook))


class InternalCallbackParam(dict):
    """``cb_params``: a dict whose keys read as attributes (``cb_params.cur_step_num``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"cb_params has no attribute {key!r}") from None

    def __setattr__(self, key, value):
        self[key] = value


class RunContext:
    """Hands ``cb_params`` to callbacks (``original_args()``) and carries stop requests."""

    def __init__(self, original_args):
        if not isinstance(original_args, dict):
            raise TypeError(f"RunContext needs a dict, got {type(original_args).__name__}")
        self._original_args = original_args
        self._stop_requested = False

    def original_args(self):
        return self._original_args

    def request_stop(self):
        """Ask ``Model.train``/``eval`` to stop after the current step."""
        self._stop_requested = True

    def get_stop_requested(self):
        return self._stop_requested


def _handle_loss(loss):
    """The loss of ``net_outputs`` as MindSpore's monitors read it (a float when it can)."""
    if isinstance(loss, (tuple, list)) and loss:
        loss = loss[0]
    if hasattr(loss, "asnumpy") or isinstance(loss, np.ndarray):
        return float(np.mean(np.asarray(loss)))
    return loss
