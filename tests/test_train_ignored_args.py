"""MindSpore arguments msjax accepts but cannot honour warn once each, naming the argument and why;
options are real keyword arguments (unknown ones: TypeError, or a warning where MindSpore takes
``**kwargs``); the CLI's choices come from the one table in ``msjax.common.formats``."""
import warnings

import numpy as np
import pytest

import msjax
from msjax import Tensor, nn
from msjax.common import formats, warn_once
from msjax.train import CheckpointConfig, Model


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(warn_once, "_warned", set())


def _dataset():
    x = np.ones((4, 2), np.float32)
    y = np.zeros((4,), np.int32)
    return [(x, y)]


def _model(**kwargs):
    net = nn.Dense(2, 3)
    return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                 nn.Momentum(net.trainable_params(), 0.01, 0.9), **kwargs)


def _caught(fn):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("kwargs, argument", [
    ({"amp_level": "O2"}, "amp_level='O2'"), ({"boost_level": "O1"}, "boost_level='O1'"),
    ({"loss_scale_manager": object()}, "loss_scale_manager="),
])
def test_model_options_it_ignores_warn_once(kwargs, argument):
    first = _caught(lambda: _model(**kwargs))
    assert len(first) == 1 and argument in first[0] and "is ignored" in first[0]
    assert _caught(lambda: _model(**kwargs)) == []


def test_model_defaults_do_not_warn():
    assert _caught(lambda: _model(amp_level="O0", boost_level="O0")) == []


def test_dataset_sink_mode_and_sink_size_warn_once_and_train_the_same():
    model = _model()
    first = _caught(lambda: model.train(1, _dataset(), dataset_sink_mode=True, sink_size=2))
    assert [m.split(":")[1].strip().split(" ")[0] for m in first] == ["dataset_sink_mode=True", "sink_size=2"]
    assert _caught(lambda: model.train(1, _dataset(), dataset_sink_mode=True, sink_size=2)) == []
    assert _caught(lambda: model.train(1, _dataset(), sink_size=5)) == []    # not sinking: MindSpore ignores it too


def test_checkpoint_config_incremental_is_a_keyword_and_unknown_options_warn_once():
    assert CheckpointConfig().map_param_inc is False
    assert CheckpointConfig(incremental=True).map_param_inc is True
    with pytest.raises(TypeError, match="'incremental' must be a bool"):
        CheckpointConfig(incremental=1)
    first = _caught(lambda: CheckpointConfig(no_such_option=1))
    assert len(first) == 1 and "no_such_option=" in first[0]
    assert _caught(lambda: CheckpointConfig(no_such_option=2)) == []


def test_checkpoint_config_formats_come_from_the_table():
    for fmt in formats.CHECKPOINT_FORMATS:
        assert CheckpointConfig(format=fmt).format == fmt
    with pytest.raises(ValueError, match="'format' must be"):
        CheckpointConfig(format="orbax-ish")


def test_tensor_to_takes_mindspores_keywords_and_refuses_others():
    t = Tensor(np.ones(3, np.float32))
    assert t.to(msjax.float16, non_blocking=True, copy=True).dtype == msjax.float16
    assert t.to(device="cpu", dtype=msjax.int32, copy=False).dtype == msjax.int32
    assert t.to(msjax.float32, copy=False) is not t          # always a new Tensor, as in MindSpore
    with pytest.raises(TypeError, match="unexpected keyword argument 'dtypes'"):
        t.to(dtypes=msjax.float16)


def test_cli_choices_are_the_tables():
    from msjax.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    choices = {a.dest: a.choices for p in sub.values() for a in p._actions if a.choices}
    assert tuple(choices["format"]) == formats.EXPORT_FORMATS
    assert tuple(choices["dec_mode"]) == formats.CIPHER_MODES
    assert set(formats.EXPORT_FORMATS) == {"MINDIR", "AIR", "ONNX", "GEIR"}


def test_dataset_hints_are_accepted_and_result_changing_options_warn_once():
    from msjax import dataset

    rows = {"x": np.arange(4, dtype=np.float32)}
    plain = [r[0].tolist() for r in dataset.NumpySlicesDataset(rows, shuffle=False).batch(2)]
    hinted = dataset.NumpySlicesDataset(rows, shuffle=False, num_parallel_workers=4).map(
        lambda x: x, num_parallel_workers=3, python_multiprocessing=True).batch(2, num_parallel_workers=2)
    assert [r[0].tolist() for r in hinted] == plain
    with pytest.raises(TypeError):
        dataset.NumpySlicesDataset(rows).map(lambda x: x, no_such_option=1)

    class Source:
        def __getitem__(self, i):
            return (np.array(i, np.int64),)

        def __len__(self):
            return 2

    first = _caught(lambda: dataset.GeneratorDataset(Source(), ["x"], column_types=[np.int32]))
    assert len(first) == 1 and "column_types=" in first[0]
    assert _caught(lambda: dataset.GeneratorDataset(Source(), ["x"], column_types=[np.int32])) == []
