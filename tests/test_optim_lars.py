"""nn.LARS: LARSUpdate's documented rule in front of Momentum, MindSpore's checkpoint names, errors.

MindSpore 2.10's CPU has no LARSUpdate kernel, so the update is checked against the documented
formula in numpy (and LARSUpdate's documented example output); the names are checked against the
TrainOneStepCell checkpoints MindSpore itself writes, both ways.
"""
import numpy as np
import pytest

import msjax
from msjax import Parameter, Tensor, nn
from msjax.errors import LayerArgumentError
from oracle import requires_mindspore, run_mindspore

RNG = np.random.RandomState(1)
# name -> (initial value, gradients of 3 steps): weight (LARS, decay), gamma (LARS, no decay),
# bias and LayerNorm (no LARS, and so no weight decay either)
NAMES = ["fc.weight", "bn.gamma", "fc.bias", "enc.LayerNorm.beta"]
VALUES = [RNG.randn(3, 4).astype(np.float32), RNG.randn(4).astype(np.float32),
          RNG.randn(3).astype(np.float32), RNG.randn(4).astype(np.float32)]
GRADS = [[RNG.randn(*v.shape).astype(np.float32) for v in VALUES] for _ in range(3)]

# case -> (msjax Momentum expression over `ps`, LARS keywords, reference settings)
CASES = {
    "defaults": ("nn.Momentum(ps, 0.1, 0.9)", {}, dict(lrs=[0.1] * 3, wd=0.0, ls=1.0)),
    "wd_loss_scale": ("nn.Momentum(ps, 0.1, 0.9, weight_decay=0.05, loss_scale=4.0)",
                      dict(epsilon=1e-8, coefficient=0.02), dict(lrs=[0.1] * 3, wd=0.05, ls=4.0, eps=1e-8, coef=0.02)),
    "clip_list_lr": ("nn.Momentum(ps, [0.05, 0.02, 0.01], 0.8, weight_decay=0.01)", dict(use_clip=True, coefficient=0.01),
                     dict(lrs=[0.05, 0.02, 0.01], m=0.8, wd=0.01, clip=True, coef=0.01)),
    "filter": ("nn.Momentum(ps, 0.1, 0.9, weight_decay=0.05)", dict(lars_filter=lambda p: "weight" in p.name),
               dict(lrs=[0.1] * 3, wd=0.05, flags=[True, False, False, False])),
}


def _reference(lrs, wd, ls=1.0, m=0.9, eps=1e-5, coef=0.001, clip=False, flags=(True, True, False, False)):
    """LARS (LARSUpdate's formula) then ApplyMomentum, in float64, 3 steps."""
    ws = [v.astype(np.float64) for v in VALUES]
    moments = [np.zeros_like(w) for w in ws]
    for step, grads in enumerate(GRADS):
        for i, g in enumerate(grads):
            g = g.astype(np.float64) / ls
            if flags[i]:
                wd_i = 0.0 if "gamma" in NAMES[i] or "beta" in NAMES[i] else wd
                w_norm, g_norm = np.linalg.norm(ws[i]), np.linalg.norm(g)
                trust = coef * w_norm / (g_norm + wd_i * w_norm + eps)
                if clip:
                    trust = min(max(trust / lrs[step], 0.0), 1.0)
                g = trust * (g + wd_i * ws[i])
            moments[i] = m * moments[i] + g
            ws[i] = ws[i] - lrs[step] * moments[i]
    return ws, moments


@pytest.mark.parametrize("case", CASES)
def test_lars_follows_the_documented_rule(case):
    expr, kwargs, settings = CASES[case]
    ps = [Parameter(v.copy(), name=n) for v, n in zip(VALUES, NAMES)]
    inner = eval(expr, {"nn": nn, "ps": ps})
    opt = nn.LARS(inner, **kwargs)
    for grads in GRADS:
        assert opt(tuple(Tensor(g) for g in grads))
    ws, moments = _reference(**settings)
    for p, w, state, mom in zip(ps, ws, inner.moments, moments):
        np.testing.assert_allclose(state.asnumpy(), mom, rtol=2e-5, atol=1e-7, err_msg=f"{case} {state.name}")
        np.testing.assert_allclose(p.asnumpy(), w, rtol=2e-5, atol=1e-6, err_msg=f"{case} {p.name}")
    assert int(opt.global_step.asnumpy()[0]) == 3 and opt.global_step is inner.global_step


def test_lars_update_matches_mindspores_documented_example():
    """ops.LARSUpdate's docstring: weight, gradient, weight_decay 0, lr 1 -> these numbers."""
    from msjax.nn.optim.lars import scale_by_lars

    w = np.array([[0.5, 0.8, 0.2], [0.6, 0.4, 0.2]], np.float32)
    g = np.array([[0.4, 0.4, 0.5], [0.2, 0.4, 0.3]], np.float32)
    (out,), _ = scale_by_lars((True,), (0.0,), 1e-5, 0.001, False, 1.0).update((g,), None, (w,))
    expected = [[0.0005265, 0.0005265, 0.00065813], [0.00026325, 0.0005265, 0.00039488]]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4)


def test_lars_checks_its_arguments():
    ps = [Parameter(v.copy(), name=n) for v, n in zip(VALUES, NAMES)]
    with pytest.raises(TypeError, match="'optimizer'"):
        nn.LARS(ps)
    with pytest.raises(TypeError, match="'epsilon'"):
        nn.LARS(nn.Momentum(ps, 0.1, 0.9), epsilon=1)
    with pytest.raises(TypeError, match="'coefficient'"):
        nn.LARS(nn.Momentum(ps, 0.1, 0.9), coefficient="0.1")
    with pytest.raises(TypeError, match="'use_clip'"):
        nn.LARS(nn.Momentum(ps, 0.1, 0.9), use_clip=1)
    groups = [{"params": ps[:1], "lr": 0.1}, {"params": ps[1:]}]
    with pytest.raises(LayerArgumentError, match="use_clip"):
        nn.LARS(nn.Momentum(groups, [0.1, 0.05], 0.9), use_clip=True)


_NET = """
class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(3, 4)
        self.ln = nn.LayerNorm((4,))
        self.fc2 = nn.Dense(4, 2)

    def construct(self, x):
        return self.fc2(self.ln(self.fc1(x)))
"""
# case -> LARS over an optimizer of `ps` (the same expression in MindSpore and msjax)
TRAIN = {
    "momentum": "nn.LARS(nn.Momentum(ps, 0.1, 0.9, weight_decay=0.01))",
    "momentum_groups": "nn.LARS(nn.Momentum([{'params': ps[:2], 'lr': 0.2}, {'params': ps[2:]}], 0.1, 0.9))",
    "momentum_clip_list_lr": "nn.LARS(nn.Momentum(ps, [0.1, 0.05], 0.9), use_clip=True)",
    "adam": "nn.LARS(nn.Adam(ps, 0.01), epsilon=1e-8, coefficient=0.02)",
}


@requires_mindspore
@pytest.mark.mindspore
def test_train_checkpoint_names_match_mindspore_both_ways(tmp_path):
    """MindSpore 2.10's TrainOneStepCell(net, LARS(...)) checkpoint lists global_step, fake_lr,
    fake_param and the inner optimizer's state; msjax writes the same names in the same order,
    each side's file loads strictly into the other's cell, and the LARS filter flags agree."""
    scope = {}
    exec(_NET, {"nn": nn}, scope)
    ours = {}
    for case, expr in TRAIN.items():
        net = scope["Net"]()
        opt = eval(expr, {"nn": nn, "ps": net.trainable_params()})
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
        msjax.save_checkpoint(step, str(tmp_path / f"msjax_{case}.ckpt"))
        ours[case] = (step, opt.lars_flag)
    code = _NET + f"CASES = {TRAIN!r}\nDIR = {str(tmp_path)!r}\n" + """
for case, expr in CASES.items():
    net = Net()
    ps = net.trainable_params()
    opt = eval(expr)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    ms.save_checkpoint(step, f"{DIR}/ms_{case}.ckpt")
    outputs[case] = np.array(list(ms.load_checkpoint(f"{DIR}/ms_{case}.ckpt")))
    outputs[case + "_flags"] = np.array(opt.lars_flag)
    not_loaded = ms.load_param_into_net(step, ms.load_checkpoint(f"{DIR}/msjax_{case}.ckpt"), strict_load=True)
    outputs[case + "_not_loaded"] = np.array(list(not_loaded[0]) + list(not_loaded[1]) + ["-"])
"""
    expected = run_mindspore(code)
    for case, (step, flags) in ours.items():
        path = str(tmp_path / f"msjax_{case}.ckpt")
        assert list(msjax.load_checkpoint(path)) == list(expected[case]), case
        assert list(expected[case + "_not_loaded"]) == ["-"], case
        assert flags == tuple(bool(f) for f in expected[case + "_flags"]), case
        theirs = msjax.load_checkpoint(str(tmp_path / f"ms_{case}.ckpt"))
        assert msjax.load_param_into_net(step, theirs, strict_load=True) == ([], []), case
