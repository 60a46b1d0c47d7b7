"""``Model``: MindSpore's high-level train / eval / predict loop over msjax Cells.

``Model(net, loss_fn, optimizer)`` builds ``TrainOneStepCell(WithLossCell(net, loss_fn), optimizer)``
as its ``train_network`` (one jitted step with buffer donation) and ``WithEvalCell(net, loss_fn)`` as
its ``eval_network``. The loop calls callbacks with MindSpore's protocol and ``cb_params``.

Under ``set_auto_parallel_context(parallel_mode="data_parallel")`` (``msjax.common.parallel``)
train / eval / predict shard each batch on axis 0 over the context's mesh and keep every
Variable replicated; each process's batch is split over its own devices, and outputs sharded
across processes are all-gathered for metrics and ``predict``.

>>> model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
...               nn.Momentum(net.trainable_params(), 0.01, 0.9), metrics={"accuracy"})
>>> model.train(2, train_ds, callbacks=[LossMonitor()])
>>> model.eval(test_ds)
{'accuracy': 0.97...}
"""
from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from msjax.common import parallel
from msjax.common.tensor import Tensor, unwrap
from msjax.common.warn_once import warn_ignored
from msjax.nn.cell import Cell
from msjax.nn.optim.optimizer import Optimizer
from msjax.nn.wrap import TrainOneStepCell, WithEvalCell, WithLossCell
from msjax.train.callback._callback import CallbackManager, InternalCallbackParam, RunContext
from msjax.train.callback._checkpoint import ModelCheckpoint
from msjax.train.metrics import Loss, Metric, get_metric_fn

__all__ = ["Model"]


def _replicate(value, sharding):
    """``value`` as a global array copied on every device of ``sharding``'s mesh (every process
    holds the same value, as after MindSpore's parameter broadcast)."""
    if jax.process_count() == 1 or isinstance(value, jax.Array) and not value.is_fully_addressable:
        return jax.device_put(value, sharding)
    return jax.make_array_from_callback(np.shape(value), sharding, lambda index: np.asarray(value)[index])


def _gathered(value):
    """``value`` whole on this process: an output sharded over several processes' devices (the
    eval or predict batch under jax.distributed) is all-gathered, so every rank's metrics and
    predictions cover the global batch; anything else is returned as it is."""
    array = unwrap(value)
    if not isinstance(array, jax.Array) or array.is_fully_addressable or array.is_fully_replicated:
        return value
    from jax.experimental import multihost_utils
    return Tensor(multihost_utils.process_allgather(array, tiled=True))


def _get_metrics(metrics):
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        for name, metric in metrics.items():
            if not isinstance(name, str) or not isinstance(metric, Metric):
                raise TypeError(f"Model: metrics dict must map str to Metric, got {name!r}: {type(metric).__name__}")
        return dict(metrics)
    if isinstance(metrics, (set, list, tuple)):
        return {name: get_metric_fn(name) for name in metrics}
    raise TypeError(f"Model: metrics must be a set of names or a dict of Metric, got {type(metrics).__name__}")


def _dataset_size(dataset):
    if hasattr(dataset, "get_dataset_size"):
        return int(dataset.get_dataset_size())
    return len(dataset)


def _shard_row(row, mesh, owner):
    """Each array column of ``row`` as a global array sharded on axis 0 over ``mesh``."""
    return tuple(Tensor(parallel.shard_batch(mesh, unwrap(x), owner))
                 if isinstance(x, (np.ndarray, Tensor, jax.Array)) else x for x in row)


def _iterate(dataset, mesh=None, owner="Model"):
    """One epoch of ``dataset`` as tuples of arrays (MindSpore datasets or plain iterables); under
    data_parallel each column is sharded on axis 0 over ``mesh``."""
    if mesh is not None:
        for row in _iterate(dataset):
            yield _shard_row(row, mesh, owner)
        return
    if hasattr(dataset, "create_tuple_iterator"):
        try:
            iterator = dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
        except TypeError:
            iterator = dataset.create_tuple_iterator()
    else:
        iterator = iter(dataset)
    for item in iterator:
        if isinstance(item, dict):
            item = tuple(item.values())
        yield tuple(item) if isinstance(item, (tuple, list)) else (item,)


def _check_sink(owner, dataset_sink_mode, sink_size=-1):
    if dataset_sink_mode:
        warn_ignored(owner, "dataset_sink_mode=True", "msjax does not sink datasets; it runs step by step, "
                     "as MindSpore does on CPU", stacklevel=4)
        if sink_size != -1:
            warn_ignored(owner, f"sink_size={sink_size!r}", "without sinking every epoch is the whole dataset",
                         stacklevel=4)


class Model:
    """``Model(network, loss_fn=None, optimizer=None, metrics=None, eval_network=None, eval_indexes=None,
    amp_level="O0", boost_level="O0", **kwargs)``.

    msjax trains in the network's own dtypes: ``amp_level`` other than "O0" (mixed precision),
    ``boost_level`` other than "O0" and MindSpore's other keyword options (``loss_scale_manager``,
    ``keep_batchnorm_fp32``, ...) are accepted and warn once that they are ignored.
    """

    def __init__(self, network, loss_fn=None, optimizer=None, metrics=None, eval_network=None, eval_indexes=None,
                 amp_level="O0", boost_level="O0", **kwargs):
        if amp_level != "O0":
            warn_ignored("Model", f"amp_level={amp_level!r}", "msjax has no automatic mixed precision; the "
                         "network trains in its own dtypes (cast it, e.g. to_float, for lower precision)")
        if boost_level != "O0":
            warn_ignored("Model", f"boost_level={boost_level!r}", "msjax has no boost modes; training is unchanged")
        for name in kwargs:       # MindSpore's Model takes **kwargs too (loss_scale_manager, ...)
            warn_ignored("Model", f"{name}=", "msjax does not implement this Model option")
        if not isinstance(network, Cell):
            raise TypeError(f"Model: 'network' must be a Cell, got {type(network).__name__}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"Model: 'optimizer' must be an msjax Optimizer, got {type(optimizer).__name__}")
        if eval_indexes is not None and (not isinstance(eval_indexes, list) or len(eval_indexes) != 3):
            raise ValueError(f"Model: 'eval_indexes' must be a list of 3 ints, got {eval_indexes!r}")
        self._network = network
        self._loss_fn = loss_fn
        self._optimizer = optimizer
        self._amp_level = amp_level
        self._metric_fns = _get_metrics(metrics)
        self._built_step = False
        self._eval_indexes = eval_indexes
        self._train_network = self._build_train_network()
        self._eval_network = eval_network
        if eval_network is None and loss_fn is not None:
            self._eval_network = WithEvalCell(network, loss_fn)
            self._eval_indexes = [0, 1, 2]
        self._predict_network = network
        self._current_epoch_num = 0
        self._current_step_num = 0

    def _place(self, mesh, network=None):
        """Under data_parallel, put every Variable of ``network`` (the train network: parameters,
        BatchNorm statistics, optimizer state) replicated on ``mesh``; return ``mesh``. Across
        processes each gives its own values (seed them alike), or rank 0's with
        ``set_auto_parallel_context(parameter_broadcast=True)``.

        With ``gradients_mean=False`` MindSpore sums the devices' gradients of their local mean
        losses; the train step Model built then scales the global mean's gradient by the device
        count (``sens``), which is the same sum."""
        network = self._train_network if network is None else network
        if network is self._train_network and self._built_step:
            mean = mesh is None or parallel.get_auto_parallel_context("gradients_mean")
            sens = 1.0 if mean else float(mesh.size)
            if network.sens != sens:
                network.sens = sens
        if mesh is None:
            return None
        sharding = parallel.replicated(mesh)
        nodes = [node for _, node in nnx.iter_graph(network) if isinstance(node, nnx.Variable)
                 and isinstance(node.get_raw_value(), (jax.Array, np.ndarray))
                 and getattr(node.get_raw_value(), "sharding", None) != sharding]
        values = [node.get_raw_value() for node in nodes]
        if nodes and jax.process_count() > 1 and parallel.get_auto_parallel_context("parameter_broadcast"):
            from jax.experimental import multihost_utils     # MindSpore's broadcast from rank 0
            values = multihost_utils.broadcast_one_to_all([np.asarray(v) for v in values])
        for node, value in zip(nodes, values):
            node.set_raw_value(_replicate(value, sharding), _unsafe_bypass_check=True)
        return mesh

    def _build_train_network(self):
        net = self._network
        if self._optimizer is not None:
            if self._loss_fn is not None:
                net = WithLossCell(net, self._loss_fn)
            self._built_step = True
            return TrainOneStepCell(net, self._optimizer)
        if self._loss_fn is not None:
            return WithLossCell(net, self._loss_fn)
        return net

    @property
    def train_network(self):
        """The cell each train step calls (network + loss + optimizer)."""
        return self._train_network

    @property
    def predict_network(self):
        return self._predict_network

    @property
    def eval_network(self):
        return self._eval_network

    # ------------------------------------------------------------------ train
    def train(self, epoch, train_dataset, callbacks=None, dataset_sink_mode=False, sink_size=-1, initial_epoch=0):
        """Train ``epoch - initial_epoch`` epochs over ``train_dataset``, calling ``callbacks``.

        msjax does not sink datasets: ``dataset_sink_mode=True`` warns once and trains step by step
        over whole epochs, so ``sink_size`` (which MindSpore reads only when sinking) is ignored
        too, with a warning once when it is set while sinking."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch <= 0:
            raise ValueError(f"Model.train: 'epoch' must be a positive int, got {epoch!r}")
        if not isinstance(initial_epoch, int) or not 0 <= initial_epoch < epoch:
            raise ValueError(f"Model.train: 'initial_epoch' must be an int in [0, epoch), got {initial_epoch!r}")
        _check_sink("Model.train", dataset_sink_mode, sink_size)
        cb_list = callbacks if isinstance(callbacks, (list, tuple)) else ([] if callbacks is None else [callbacks])
        saver = next((cb for cb in cb_list if isinstance(cb, ModelCheckpoint) and cb._config.exception_save), None)
        if saver is None:
            return self._train(epoch, train_dataset, callbacks, initial_epoch)
        try:
            return self._train(epoch, train_dataset, callbacks, initial_epoch)
        except (Exception, KeyboardInterrupt):
            saver._exception_save(self._train_network, self._current_epoch_num, self._current_step_num)
            raise

    def _train(self, epoch, train_dataset, callbacks, initial_epoch):
        batch_num = _dataset_size(train_dataset)
        cb_params = InternalCallbackParam()
        cb_params.cur_step_num = initial_epoch * batch_num
        cb_params.train_network = self._train_network
        cb_params.epoch_num = epoch - initial_epoch
        cb_params.batch_num = batch_num
        cb_params.mode = "train"
        cb_params.loss_fn = self._loss_fn
        cb_params.optimizer = self._optimizer
        mesh = self._place(parallel.data_parallel_mesh())
        cb_params.parallel_mode = parallel.get_auto_parallel_context("parallel_mode")
        cb_params.device_number = 1 if mesh is None else mesh.size
        cb_params.train_dataset = train_dataset
        cb_params.train_dataset_element = None
        cb_params.network = self._network
        cb_params.last_save_ckpt_step = None
        cb_params.latest_ckpt_file = None
        cb_params.dataset_sink_mode = False
        cb_params.cur_epoch_num = initial_epoch
        cb_params.net_outputs = None
        self._train_network.set_train(True)
        with CallbackManager(callbacks) as list_callback:
            cb_params.list_callback = list_callback
            run_context = RunContext(cb_params)
            list_callback.on_train_begin(run_context)
            for i in range(initial_epoch, epoch):
                cb_params.cur_epoch_num = i + 1
                self._current_epoch_num, self._current_step_num = i + 1, 0
                list_callback.on_train_epoch_begin(run_context)
                for element in _iterate(train_dataset, mesh, "Model.train"):
                    if self._loss_fn is not None and len(element) != 2:
                        raise ValueError(f"Model.train: with a loss_fn, each dataset row must be (data, label); "
                                         f"got {len(element)} columns")
                    cb_params.cur_step_num += 1
                    self._current_step_num = int((cb_params.cur_step_num - 1) % batch_num + 1)
                    cb_params.train_dataset_element = element
                    list_callback.on_train_step_begin(run_context)
                    cb_params.net_outputs = self._train_network(*element)
                    list_callback.on_train_step_end(run_context)
                    if run_context.get_stop_requested():
                        break
                list_callback.on_train_epoch_end(run_context)
                if run_context.get_stop_requested():
                    break
            list_callback.on_train_end(run_context)

    # ------------------------------------------------------------------ eval / predict
    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode=False):
        """Run the eval network over ``valid_dataset``; return ``{metric name: value}``
        (``dataset_sink_mode=True`` warns once: msjax evaluates step by step, the same values)."""
        _check_sink("Model.eval", dataset_sink_mode)
        if self._eval_network is None:
            raise ValueError("Model.eval needs a loss_fn or an eval_network; build Model(net, loss_fn, ..., metrics=...)")
        if not self._metric_fns:
            raise ValueError("Model.eval needs metrics, e.g. Model(..., metrics={'accuracy'})")
        for metric in self._metric_fns.values():
            metric.clear()
        cb_params = InternalCallbackParam()
        cb_params.eval_network = self._eval_network
        cb_params.valid_dataset = valid_dataset
        cb_params.batch_num = _dataset_size(valid_dataset)
        cb_params.mode = "eval"
        cb_params.cur_step_num = 0
        cb_params.network = self._network
        cb_params.dataset_sink_mode = False
        self._eval_network.set_train(False)
        mesh = self._place(parallel.data_parallel_mesh(), self._eval_network)
        with CallbackManager(callbacks) as list_callback:
            cb_params.list_callback = list_callback
            run_context = RunContext(cb_params)
            list_callback.on_eval_begin(run_context)
            list_callback.on_eval_epoch_begin(run_context)
            for element in _iterate(valid_dataset, mesh, "Model.eval"):
                cb_params.cur_step_num += 1
                cb_params.eval_dataset_element = element
                list_callback.on_eval_step_begin(run_context)
                outputs = self._eval_network(*element)
                cb_params.net_outputs = outputs
                self._update_metrics(outputs)
                list_callback.on_eval_step_end(run_context)
                if run_context.get_stop_requested():
                    break
            list_callback.on_eval_epoch_end(run_context)
            metrics = {name: metric.eval() for name, metric in self._metric_fns.items()}
            cb_params.metrics = metrics
            list_callback.on_eval_end(run_context)
        return metrics

    def _update_metrics(self, outputs):
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        outputs = tuple(_gathered(x) for x in outputs)
        for metric in self._metric_fns.values():
            if self._eval_indexes is None:
                metric.update(*outputs)
            elif isinstance(metric, Loss):
                metric.update(outputs[self._eval_indexes[0]])
            else:
                metric.update(outputs[self._eval_indexes[1]], outputs[self._eval_indexes[2]])

    def predict(self, *predict_data, backend=None, config=None):
        """Run the network in inference mode on ``predict_data``. ``backend`` and ``config`` choose
        MindSpore Lite for inference; msjax has one backend, so they warn once when given."""
        if backend is not None or config is not None:
            warn_ignored("Model.predict", "backend=" if backend is not None else "config=",
                         "msjax runs the network itself (no MindSpore Lite backend)")
        self._predict_network.set_train(False)
        mesh = self._place(parallel.data_parallel_mesh(), self._predict_network)
        data = tuple(Tensor(x) if isinstance(x, np.ndarray) else x for x in predict_data)
        if mesh is not None:
            data = _shard_row(data, mesh, "Model.predict")
        if mesh is None:
            return self._predict_network(*data)
        return jax.tree.map(_gathered, self._predict_network(*data), is_leaf=lambda x: isinstance(x, Tensor))
