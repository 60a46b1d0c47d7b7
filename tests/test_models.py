"""LeNet5 and ResNet50 against real MindSpore 2.10 and the model zoo's parameter list.

One oracle call (module fixture) loads lenet5.ckpt with MindSpore's load_checkpoint, builds the
zoo ResNet50 with ``ms_models.resnet50`` and returns its parameters, eval logits and train-mode
logits with the updated BatchNorm statistics for a 2x3x64x64 batch.
"""
import numpy as np
import pytest

import msjax
from msjax.models import LeNet5, ResNet50, resnet50
from oracle import requires_mindspore, run_mindspore

BATCH = np.random.default_rng(3).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)

MS_CODE = """
from ms_models import resnet50
lenet = ms.load_checkpoint(os.path.join(FIXTURES, "lenet5.ckpt"))
for name, p in lenet.items():
    outputs["lenet/" + name] = p.asnumpy()
np.random.seed(1)
net = resnet50(class_num=10)
names = []
for name, p in net.parameters_and_names():
    names.append(name)
    outputs["resnet/" + name] = p.asnumpy().copy()  # asnumpy() is a view: training updates it in place
outputs["resnet_names"] = np.array(names)
net.set_train(False)
x = Tensor(inputs["x"])
outputs["eval_logits"] = net(x).asnumpy()
net.set_train(True)
outputs["train_logits"] = net(x).asnumpy()
for name, p in net.parameters_and_names():
    if "moving" in name:
        outputs["after/" + name] = p.asnumpy()
"""


@pytest.fixture(scope="module")
def ms_results():
    return run_mindspore(MS_CODE, {"x": BATCH})


def test_resnet50_parameters_match_zoo_list(fixtures_dir):
    rows = [line.split("\t") for line in (fixtures_dir / "resnet50_params.txt").read_text().splitlines()]
    ours = [(name, str(list(p.shape)), str(p.dtype)) for name, p in ResNet50(class_num=10).parameters_and_names()]
    assert len(ours) == len(rows) == 267
    assert ours == [tuple(r) for r in rows]


def test_resnet50_alias_and_param_names():
    net = resnet50(class_num=3)
    assert isinstance(net, ResNet50)
    assert all(p.name == name for name, p in net.parameters_and_names())
    assert net.end_point.weight.shape == (3, 2048)
    frozen = [p.name for p in net.untrainable_params()]
    assert len(frozen) == 2 * 53 and all("moving_" in n for n in frozen)


def test_resnet50_zoo_initialisers():
    msjax.set_seed(0)
    net = ResNet50(class_num=10)
    w = net.conv1.weight.asnumpy()  # (64, 3, 7, 7): He normal, fan_out, relu gain
    assert abs(w.std() - np.sqrt(2.0 / (64 * 49))) < 0.1 * np.sqrt(2.0 / (64 * 49))
    fc = net.end_point.weight.asnumpy()  # He uniform, a=sqrt(5): bound 1/sqrt(fan_in)
    assert np.abs(fc).max() <= 1 / np.sqrt(2048) and np.abs(fc).max() > 0.9 / np.sqrt(2048)
    assert not net.end_point.bias.asnumpy().any()
    assert (net.bn1.gamma.asnumpy() == 1).all() and (net.bn1.moving_variance.asnumpy() == 1).all()


@requires_mindspore
def test_lenet5_reproduces_mindspore_output(ms_results, fixtures_dir):
    net = LeNet5()
    params = net.parameters_dict()
    loaded = {k[len("lenet/"):]: v for k, v in ms_results.items() if k.startswith("lenet/")}
    assert list(loaded) == list(params)
    for name, value in loaded.items():
        assert params[name].shape == value.shape
        params[name].set_data(value)
    net.set_train(False)
    x = np.load(fixtures_dir / "lenet5_input.npy")
    expected = np.load(fixtures_dir / "lenet5_output.npy")
    out = net(msjax.Tensor(x)).asnumpy()
    assert out.shape == (4, 10)
    assert np.abs(out - expected).max() <= 1e-5


def _load_resnet(ms_results):
    net = ResNet50(class_num=10)
    names = [n for n, _ in net.parameters_and_names()]
    assert names == list(ms_results["resnet_names"])
    for name, p in net.parameters_and_names():
        p.set_data(ms_results["resnet/" + name])
    return net


@requires_mindspore
def test_resnet50_eval_logits_match_mindspore(ms_results):
    net = _load_resnet(ms_results)
    net.set_train(False)
    out = net(msjax.Tensor(BATCH)).asnumpy()
    expected = ms_results["eval_logits"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@requires_mindspore
def test_resnet50_train_forward_updates_moving_stats_like_mindspore(ms_results):
    net = _load_resnet(ms_results)
    net.set_train(True)
    out = net(msjax.Tensor(BATCH)).asnumpy()
    expected = ms_results["train_logits"]
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    params = net.parameters_dict()
    for name, value in ms_results.items():
        if name.startswith("after/"):
            key = name[len("after/"):]
            np.testing.assert_allclose(params[key].asnumpy(), value, rtol=1e-3, atol=1e-4 * np.abs(value).max(),
                                       err_msg=key)  # 53 layers deep: float32 sums drift slightly
    probe = params["layer4.2.bn3.moving_mean"].asnumpy()
    assert np.abs(probe).max() > 0  # the statistics really moved
