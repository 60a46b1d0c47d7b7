"""Optimizers: MindSpore's update rules (checked against real MindSpore), state names and errors."""
import numpy as np
import pytest

import msjax
from msjax import Parameter, Tensor, nn
from oracle import requires_mindspore, run_mindspore

RNG = np.random.RandomState(0)
W0 = RNG.randn(3, 4).astype(np.float32)
G0 = RNG.randn(2, 3).astype(np.float32)  # gamma-like: excluded from default weight decay
B0 = RNG.randn(3).astype(np.float32)
GRADS = [[RNG.randn(*a.shape).astype(np.float32) for a in (W0, G0, B0)] for _ in range(3)]


def _params():
    return [Parameter(W0.copy(), name="fc.weight"), Parameter(G0.copy(), name="bn.gamma"),
            Parameter(B0.copy(), name="fc.bias")]


# name -> (code building `opt` from `ps` in MindSpore, same in msjax); both run 3 steps on GRADS
CASES = {
    "momentum_wd_loss_scale": "nn.Momentum(ps, 0.1, 0.9, weight_decay=0.05, loss_scale=2.0)",
    "momentum_list_lr": "nn.Momentum(ps, [0.1, 0.05, 0.02], 0.8)",
    "momentum_groups": ("nn.Momentum([{'params': [ps[0]], 'lr': 0.2, 'weight_decay': 0.1}, "
                        "{'params': [ps[1], ps[2]]}, {'order_params': [ps[2], ps[0], ps[1]]}], 0.05, 0.9, "
                        "weight_decay=0.01)"),
    "momentum_cosine": "nn.Momentum(ps, nn.CosineDecayLR(0.01, 0.1, 2), 0.9)",
    "sgd_momentum_dampening": "nn.SGD(ps, 0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)",
    "sgd_nesterov": "nn.SGD(ps, 0.05, momentum=0.5, nesterov=True)",
    "sgd_plain": "nn.SGD(ps, 0.1)",
    "adam": "nn.Adam(ps, 0.01, weight_decay=0.01)",
    "adam_nesterov_groups": "nn.Adam([{'params': ps[:2], 'lr': 0.05}, {'params': ps[2:]}], 0.01, use_nesterov=True)",
    "rmsprop": "nn.RMSProp(ps, 0.01, weight_decay=0.05, loss_scale=2.0)",
    "rmsprop_centered_momentum": "nn.RMSProp(ps, 0.01, decay=0.8, momentum=0.5, epsilon=1e-6, centered=True)",
    "rmsprop_groups": ("nn.RMSProp([{'params': ps[:1], 'lr': 0.02, 'weight_decay': 0.1}, {'params': ps[1:]}], "
                       "0.01, momentum=0.3, centered=True)"),
    "rmsprop_list_lr": "nn.RMSProp(ps, [0.02, 0.01, 0.005], momentum=0.3)",
    "adagrad": "nn.Adagrad(ps, accum=0.2, learning_rate=0.05, weight_decay=0.01, loss_scale=4.0)",
    "adagrad_cosine": "nn.Adagrad(ps, learning_rate=nn.CosineDecayLR(0.01, 0.1, 2))",
    "ftrl_l2": "nn.FTRL(ps, learning_rate=0.1, l2=0.02)",
    "ftrl_wd_loss_scale": "nn.FTRL(ps, initial_accum=0.5, learning_rate=0.05, lr_power=-0.7, weight_decay=0.1, loss_scale=2.0)",
    "adam_weight_decay": "nn.AdamWeightDecay(ps, 0.01, weight_decay=0.1)",
    "adam_weight_decay_groups": ("nn.AdamWeightDecay([{'params': ps[:1], 'lr': 0.05, 'weight_decay': 0.2}, "
                                 "{'params': ps[1:]}], 0.01, beta1=0.8, eps=1e-8, weight_decay=0.01)"),
}
# MindSpore 2.10's CPU ApplyMomentum kernel ignores use_nesterov (checked below); msjax follows the
# documented rule, p -= lr * grad + lr * momentum * moments, which the GPU/Ascend kernels implement.
NESTEROV = "nn.Momentum(ps, 0.1, 0.9, weight_decay=0.05, use_nesterov=True)"
# MindSpore 2.10's CPU ApplyAdagrad updates accum even with update_slots=False, and its CPU ApplyFtrl
# leaves the documented rule when l1 > 0; msjax follows the documented rules (pinned below).
NO_SLOTS = "nn.Adagrad(ps, learning_rate=0.05, update_slots=False)"
FTRL_L1 = "nn.FTRL(ps, learning_rate=0.1, l1=0.05, l2=0.02)"
ORACLE_CASES = dict(CASES, momentum_nesterov_cpu=NESTEROV, adagrad_no_slots_cpu=NO_SLOTS, ftrl_l1_cpu=FTRL_L1)


def _run_msjax(expr):
    ps = _params()
    opt = eval(expr, {"nn": nn, "ps": ps})
    names = ["fc.weight", "bn.gamma", "fc.bias"]
    for grads in GRADS:  # gradients come in the optimizer's parameter order (order_params may reorder)
        by_name = dict(zip(names, grads))
        opt(tuple(Tensor(by_name[p.name]) for p in opt.parameters))
    return {p.name: p.asnumpy() for p in opt.get_parameters()}


@pytest.fixture(scope="module")
def mindspore_results():
    inputs = {"w0": W0, "g0": G0, "b0": B0}
    for i, grads in enumerate(GRADS):
        for j, g in enumerate(grads):
            inputs[f"grad{i}_{j}"] = g
    code = "CASES = " + repr(ORACLE_CASES) + """
for case, expr in CASES.items():
    ps = [Parameter(Tensor(inputs["w0"]), name="fc.weight"), Parameter(Tensor(inputs["g0"]), name="bn.gamma"),
          Parameter(Tensor(inputs["b0"]), name="fc.bias")]
    opt = eval(expr)
    for i in range(3):
        by_name = {n: inputs[f"grad{i}_{j}"] for j, n in enumerate(["fc.weight", "bn.gamma", "fc.bias"])}
        opt(tuple(Tensor(by_name[p.name]) for p in opt.parameters))
    for p in opt.get_parameters():
        outputs[case + "/" + p.name] = p.asnumpy()
"""
    out = run_mindspore(code, inputs)
    results = {}
    for key, value in out.items():
        case, name = key.split("/", 1)
        results.setdefault(case, {})[name] = value
    return results


@requires_mindspore
@pytest.mark.mindspore
@pytest.mark.parametrize("case", sorted(CASES))
def test_update_matches_mindspore(case, mindspore_results):
    expected = mindspore_results[case]
    got = _run_msjax(CASES[case])
    assert list(got) == list(expected), "optimizer parameter names/order differ from MindSpore's"
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=f"{case}: {name}")


def _nesterov_reference():
    """The documented Nesterov Momentum rule in numpy (weight decay 0.05 except on gamma)."""
    ps = [W0.copy(), G0.copy(), B0.copy()]
    moments = [np.zeros_like(p) for p in ps]
    for grads in GRADS:
        for i, g in enumerate(grads):
            g = g + (0.0 if i == 1 else np.float32(0.05)) * ps[i]
            moments[i] = np.float32(0.9) * moments[i] + g
            ps[i] = ps[i] - (np.float32(0.1) * g + np.float32(0.1) * np.float32(0.9) * moments[i])
    return ps, moments


def test_nesterov_follows_the_documented_rule():
    ps, moments = _nesterov_reference()
    got = _run_msjax(NESTEROV)
    for name, p, m in zip(["fc.weight", "bn.gamma", "fc.bias"], ps, moments):
        np.testing.assert_allclose(got[name], p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["moments." + name], m, rtol=1e-5, atol=1e-6)


@requires_mindspore
@pytest.mark.mindspore
def test_mindspore_cpu_kernel_ignores_nesterov(mindspore_results):
    """Pins the one known divergence: on CPU MindSpore 2.10 runs plain Momentum for use_nesterov=True."""
    cpu = mindspore_results["momentum_nesterov_cpu"]
    plain = _run_msjax(NESTEROV.replace(", use_nesterov=True", ""))
    for name, value in cpu.items():
        np.testing.assert_allclose(plain[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def _ftrl_reference():
    """FTRL's documented rule in numpy (lr 0.1, l1 0.05, l2 0.02, lr_power -0.5, accum 0.1), 3 steps."""
    lr, l1, l2 = np.float32(0.1), np.float32(0.05), np.float32(0.02)
    ps = [W0.copy(), G0.copy(), B0.copy()]
    accum = [np.full_like(p, 0.1) for p in ps]
    linear = [np.zeros_like(p) for p in ps]
    for grads in GRADS:
        for i, g in enumerate(grads):
            new = accum[i] + g * g
            linear[i] = linear[i] + g - (np.sqrt(new) - np.sqrt(accum[i])) / lr * ps[i]
            quadratic = np.sqrt(new) / lr + 2 * l2
            ps[i] = np.where(np.abs(linear[i]) > l1, (np.sign(linear[i]) * l1 - linear[i]) / quadratic, 0)
            accum[i] = new
    return dict(zip(["fc.weight", "bn.gamma", "fc.bias"], ps))


def test_ftrl_and_adagrad_follow_the_documented_rules():
    got = _run_msjax(FTRL_L1)
    for name, value in _ftrl_reference().items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    frozen = _run_msjax(NO_SLOTS)
    for name, w, grads in zip(["fc.weight", "bn.gamma", "fc.bias"], [W0, G0, B0], zip(*GRADS)):
        np.testing.assert_allclose(frozen[name], w - 0.05 * sum(grads) / np.sqrt(np.float32(0.1)), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
        assert (frozen["accum." + name] == np.float32(0.1)).all()


@requires_mindspore
@pytest.mark.mindspore
def test_mindspore_cpu_adagrad_and_ftrl_quirks(mindspore_results):
    """Pins MindSpore 2.10's CPU kernels: Adagrad ignores update_slots=False; FTRL with l1 > 0 leaves
    the documented rule (with l1 = 0 it matches it: CASES), by far more than rounding."""
    slots = _run_msjax(NO_SLOTS.replace(", update_slots=False", ""))
    for name, value in mindspore_results["adagrad_no_slots_cpu"].items():
        np.testing.assert_allclose(slots[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    cpu = mindspore_results["ftrl_l1_cpu"]["fc.weight"]
    assert np.abs(cpu - _ftrl_reference()["fc.weight"]).max() > 1e-3


def test_momentum_state_names_and_table():
    ps = _params()
    opt = nn.Momentum(ps, 0.01, 0.9)
    names = [p.name for p in opt.get_parameters()]
    assert names == ["global_step", "learning_rate", "fc.weight", "bn.gamma", "fc.bias", "momentum",
                     "moments.fc.weight", "moments.bn.gamma", "moments.fc.bias"]
    assert opt.global_step.dtype == msjax.int32 and opt.global_step.shape == (1,)
    assert opt.learning_rate.shape == () and opt.momentum.shape == ()
    assert opt.state_names() == {"moments.trace.0": "moments.fc.weight", "moments.trace.1": "moments.bn.gamma",
                                 "moments.trace.2": "moments.fc.bias"}
    assert all(not m.asnumpy().any() for m in opt.moments)
    sgd = nn.SGD(ps, 0.1, momentum=0.9)
    assert set(sgd.state_names().values()) == {f"{k}.{p.name}" for k in ("accum", "stat") for p in ps}


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_is_named_by_the_one_table_not_by_chain_position(case):
    """STATE_TABLE renames each named optax state field to MindSpore's prefix (checkpoint.names'
    rule); the names do not move when the chain gains a step (loss_scale, weight decay)."""
    from msjax.checkpoint.names import path_to_name

    opt = eval(CASES[case], {"nn": nn, "ps": _params()})
    got = opt.state_names()
    fields = {leaf.rpartition(".")[0] for leaf in got}
    assert fields <= set(opt.STATE_TABLE) and len(got) == len(fields) * len(opt.parameters)
    for leaf, ms_name in got.items():
        field, _, index = leaf.rpartition(".")
        param = opt.parameters[int(index)]
        assert path_to_name((*field.split("."), param.name), renames=opt.STATE_TABLE) == ms_name
        assert ms_name in opt.parameters_dict()
    plain = eval(CASES[case].replace(", loss_scale=2.0", ""), {"nn": nn, "ps": _params()})
    assert plain.state_names() == got


def test_optimizer_shares_the_networks_parameters():
    ps = _params()
    opt = nn.Momentum(ps, 0.5, 0.0)
    opt(tuple(Tensor(np.ones_like(p.asnumpy())) for p in ps))
    np.testing.assert_allclose(ps[0].asnumpy(), W0 - 0.5)
    assert int(opt.global_step.asnumpy()[0]) == 1


@pytest.mark.parametrize("kwargs, error", [
    (dict(learning_rate="0.1", momentum=0.9), TypeError),
    (dict(learning_rate=-1.0, momentum=0.9), ValueError),
    (dict(learning_rate=0.1, momentum=-0.5), ValueError),
    (dict(learning_rate=0.1, momentum=1), TypeError),
    (dict(learning_rate=0.1, momentum=0.9, loss_scale=0.0), ValueError),
    (dict(learning_rate=0.1, momentum=0.9, weight_decay=-0.1), ValueError),
    (dict(learning_rate=np.ones((2, 2), np.float32), momentum=0.9), ValueError),
])
def test_momentum_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        nn.Momentum(_params(), **kwargs)


def test_bad_params_and_groups():
    with pytest.raises(TypeError, match="params"):
        nn.Momentum(Parameter(W0), 0.1, 0.9)
    with pytest.raises(ValueError, match="empty"):
        nn.Momentum([], 0.1, 0.9)
    ps = _params()
    with pytest.raises(KeyError, match="group keys"):
        nn.Momentum([{"params": ps, "momentum": 0.1}], 0.1, 0.9)
    with pytest.raises(RuntimeError, match="more than one group"):
        nn.Momentum([{"params": ps}, {"params": ps[:1]}], 0.1, 0.9)
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(ps, 0.1, momentum=0.0, nesterov=True)


def test_momentum_resumes_from_mindspores_training_checkpoint(fixtures_dir):
    """MindSpore 2.10's own lenet-2_4.ckpt (weights, moments.*, global_step) loads strictly into
    Momentum over msjax's LeNet5, and the next step uses the loaded moments: the named optax
    state reads and writes the same Parameters the old chain positions did."""
    from msjax.models import LeNet5

    train = msjax.load_checkpoint(str(fixtures_dir / "train" / "lenet-2_4.ckpt"))
    opt = nn.Momentum(LeNet5().trainable_params(), 0.5, 0.5)
    assert msjax.load_param_into_net(opt, train, strict_load=True) == ([], [])
    grads = [np.full(p.shape, 0.25, np.float32) for p in opt.parameters]
    opt(tuple(Tensor(g) for g in grads))
    lr, momentum = float(train["learning_rate"].asnumpy()), float(train["momentum"].asnumpy())
    for p, m, g in zip(opt.parameters, opt.moments, grads):
        moments = momentum * train[m.name].asnumpy() + g
        np.testing.assert_allclose(m.asnumpy(), moments, rtol=1e-6, atol=1e-7, err_msg=m.name)
        np.testing.assert_allclose(p.asnumpy(), train[p.name].asnumpy() - lr * moments, rtol=1e-5,
                                   atol=1e-6, err_msg=p.name)
    assert int(opt.global_step.asnumpy()[0]) == int(train["global_step"].asnumpy()[0]) + 1


def _lamb_reference(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-6, wd=0.01):
    """Lamb's documented rule in numpy, 3 steps (MindSpore 2.10 has no CPU Lamb kernel to run)."""
    ps = [W0.copy().astype(np.float64), G0.copy().astype(np.float64), B0.copy().astype(np.float64)]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    for t, grads in enumerate(GRADS, start=1):
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            r = (m[i] / (1 - beta1 ** t)) / (np.sqrt(v[i] / (1 - beta2 ** t)) + eps)
            r = r + (0.0 if i == 1 else wd) * ps[i]  # bn.gamma: no decay
            ratio = np.linalg.norm(ps[i]) / np.linalg.norm(r)
            ps[i] = ps[i] - lr * ratio * r
    return dict(zip(["fc.weight", "bn.gamma", "fc.bias"], ps)), dict(zip(["fc.weight", "bn.gamma", "fc.bias"], m))


def test_lamb_follows_the_documented_rule():
    got = _run_msjax("nn.Lamb(ps, 0.1, weight_decay=0.01)")
    params, moments = _lamb_reference()
    for name in params:
        np.testing.assert_allclose(got[name], params[name], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(got["lamb_m." + name], moments[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(got["global_step"][0]) == 3


# optimizer -> the same expression over `net.trainable_params()`; MindSpore saves a TrainOneStepCell
# checkpoint of each (Lamb's too: saving needs no kernel) and the names must be msjax's
TRAIN_NAMES = {
    "rmsprop": "nn.RMSProp(ps, 0.1)",
    "rmsprop_centered": "nn.RMSProp(ps, 0.1, centered=True)",
    "adagrad": "nn.Adagrad(ps)",
    "ftrl": "nn.FTRL(ps)",
    "adam_weight_decay": "nn.AdamWeightDecay(ps)",
    "lamb": "nn.Lamb(ps, 0.1)",
}
_TRAIN_NET = """
class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def construct(self, x):
        return self.bn(self.fc(x))
"""


@requires_mindspore
@pytest.mark.mindspore
def test_train_checkpoint_state_names_match_mindspore(tmp_path):
    code = _TRAIN_NET + "CASES = " + repr(TRAIN_NAMES) + """
for case, expr in CASES.items():
    net = Net()
    ps = net.trainable_params()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), eval(expr))
    ms.save_checkpoint(step, case + ".ckpt")
    outputs[case] = np.array(list(ms.load_checkpoint(case + ".ckpt")))
"""
    expected = run_mindspore(code)
    scope = {}
    exec(_TRAIN_NET, {"nn": nn}, scope)
    for case, expr in TRAIN_NAMES.items():
        net = scope["Net"]()
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), eval(expr, {"nn": nn, "ps": net.trainable_params()}))
        path = str(tmp_path / f"{case}.ckpt")
        msjax.save_checkpoint(step, path)
        assert list(msjax.load_checkpoint(path)) == list(expected[case]), case
