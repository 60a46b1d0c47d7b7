"""``LossMonitor``, ``TimeMonitor``, ``History``, ``LambdaCallback`` and ``ProgressBar`` (tqdm.auto)."""
from __future__ import annotations

import time

import numpy as np

from msjax.common.tensor import Tensor
from msjax.train.callback._callback import Callback, _handle_loss

__all__ = ["LossMonitor", "TimeMonitor", "History", "LambdaCallback", "ProgressBar"]


class LossMonitor(Callback):
    """Print ``epoch: E step: S, loss is L`` every ``per_print_times`` steps; stop on NaN/Inf.

    >>> model.train(1, ds, callbacks=[LossMonitor(10)])
    """

    def __init__(self, per_print_times=1):
        super().__init__()
        if not isinstance(per_print_times, int) or isinstance(per_print_times, bool):     # as MindSpore: a
            raise TypeError(f"LossMonitor: per_print_times must be an int, got "        # non-int is a TypeError,
                            f"{type(per_print_times).__name__}")                         # a negative a ValueError
        if per_print_times < 0:
            raise ValueError(f"LossMonitor: per_print_times must be an int >= 0, got {per_print_times!r}")
        self._per_print_times = per_print_times
        self._last_print_time = 0

    def step_end(self, run_context):
        cb_params = run_context.original_args()
        if self._per_print_times == 0 or cb_params.cur_step_num - self._last_print_time < self._per_print_times:
            return
        epoch = cb_params.get("cur_epoch_num", 1)
        step_in_epoch = (cb_params.cur_step_num - 1) % cb_params.batch_num + 1
        loss = _handle_loss(cb_params.net_outputs)
        if isinstance(loss, float) and (np.isnan(loss) or np.isinf(loss)):
            raise ValueError(f"In epoch: {epoch} step: {step_in_epoch}, loss is NAN or INF, training process "
                             f"cannot continue, terminating training.")
        self._last_print_time = cb_params.cur_step_num
        print(f"epoch: {epoch} step: {step_in_epoch}, loss is {loss}", flush=True)

    def on_train_epoch_end(self, run_context):
        metrics = run_context.original_args().get("metrics")
        if metrics:
            print(f"Eval result: epoch {run_context.original_args().cur_epoch_num}, metrics: {metrics}")


class TimeMonitor(Callback):
    """Print each epoch's time and time per step."""

    def __init__(self, data_size=None, data_time=False):
        super().__init__()
        self.data_size = data_size
        self.data_time = data_time
        self.epoch_time = time.time()

    def epoch_begin(self, run_context):
        self.epoch_time = time.time()

    def epoch_end(self, run_context):
        epoch_ms = (time.time() - self.epoch_time) * 1000
        cb_params = run_context.original_args()
        steps = cb_params.get("batch_num") or self.data_size or 1
        mode = cb_params.get("mode", "")
        print(f"{mode.title()} epoch time: {epoch_ms:5.3f} ms, per step time: {epoch_ms / steps:5.3f} ms", flush=True)


class History(Callback):
    """Record each epoch's number (``epoch``: ``{"epoch": [1, 2, ...]}``) and, per epoch, the network
    output and the metrics in ``cb_params`` (``history``: ``{"net_output": [...], <metric>: [...]}``).

    A Tensor/array output is recorded as its mean; of a tuple/list output, the first element.

    >>> history = History(); model.train(2, ds, callbacks=[history]); history.history["net_output"]
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = None

    def begin(self, run_context):
        self.epoch = {"epoch": []}

    def epoch_end(self, run_context):
        cb_params = run_context.original_args()
        if self.epoch is None:          # used without begin (a hand-driven RunContext)
            self.epoch = {"epoch": []}
        self.epoch["epoch"].append(cb_params.get("cur_epoch_num", 1))
        output = cb_params.get("net_outputs")
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], (Tensor, np.ndarray)):
            output = output[0]
        if isinstance(output, (Tensor, np.ndarray)):
            output = np.mean(np.asarray(output.asnumpy() if isinstance(output, Tensor) else output))
        record = {"net_output": output}
        record.update(cb_params.get("metrics") or {})
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_train_step_end=lambda rc: ...)``."""

    def __init__(self, on_train_epoch_begin=None, on_train_epoch_end=None, on_train_step_begin=None,
                 on_train_step_end=None, on_train_begin=None, on_train_end=None,
                 on_eval_epoch_begin=None, on_eval_epoch_end=None, on_eval_step_begin=None,
                 on_eval_step_end=None, on_eval_begin=None, on_eval_end=None):
        super().__init__()
        given = dict(locals())
        for hook, fn in given.items():
            if hook.startswith("on_"):
                setattr(self, hook, fn if fn else (lambda run_context: None))


class ProgressBar(Callback):
    """A tqdm progress bar over training steps (shows as a widget in notebooks, text in terminals).

    The bar's postfix shows the latest loss, read every ``refresh_steps`` steps (each read waits for
    the device).

    >>> model.train(2, ds, callbacks=[ProgressBar()])
    """

    def __init__(self, refresh_steps=1, leave=True):
        super().__init__()
        self.refresh_steps = max(1, int(refresh_steps))
        self.leave = leave
        self._bar = None

    def on_train_begin(self, run_context):
        from tqdm.auto import tqdm
        cb_params = run_context.original_args()
        total = cb_params.get("batch_num", 0) * cb_params.get("epoch_num", 0) or None
        self._bar = tqdm(total=total, leave=self.leave, desc="train", unit="step")

    def on_train_step_end(self, run_context):
        if self._bar is None:
            return
        cb_params = run_context.original_args()
        self._bar.update(1)
        if cb_params.cur_step_num % self.refresh_steps == 0:
            self._bar.set_postfix(epoch=cb_params.cur_epoch_num, loss=f"{_handle_loss(cb_params.net_outputs):.4f}")

    def on_train_end(self, run_context):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
