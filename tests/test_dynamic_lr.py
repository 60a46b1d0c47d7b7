"""``nn.dynamic_lr`` lists equal MindSpore 2.10's, element for element (one oracle call)."""
import pytest

from msjax import nn
from oracle import requires_mindspore, run_mindspore

# the same call text runs in MindSpore and in msjax
CASES = [
    "piecewise_constant_lr([2, 5, 10], [0.1, 0.05, 0.01])",
    "exponential_decay_lr(0.1, 0.9, 10, 2, 1)",
    "exponential_decay_lr(0.1, 0.9, 13, 2, 3, is_stair=True)",
    "natural_exp_decay_lr(0.1, 0.9, 10, 2, 2)",
    "natural_exp_decay_lr(0.1, 0.9, 13, 2, 2, is_stair=True)",
    "inverse_decay_lr(0.1, 0.5, 10, 2, 2)",
    "inverse_decay_lr(0.1, 0.5, 13, 2, 2, True)",
    "cosine_decay_lr(0.01, 0.1, 10, 2, 2)",
    "cosine_decay_lr(0.0, 0.1, 21, 3, 4)",
    "polynomial_decay_lr(0.1, 0.01, 10, 2, 2, 0.5)",
    "polynomial_decay_lr(0.1, 0.01, 17, 2, 3, 2.0, update_decay_epoch=True)",
    "warmup_lr(0.1, 10, 2, 3)",
    "warmup_lr(0.1, 3, 1, 5)",
]
BAD = [  # (call, MindSpore's exception type)
    ("piecewise_constant_lr([2, 5], [0.1])", ValueError),
    ("piecewise_constant_lr([5, 2], [0.1, 0.2])", ValueError),
    ("piecewise_constant_lr(2, [0.1])", TypeError),
    ("exponential_decay_lr(0.1, 0.9, 10, 2, 1, is_stair=1)", TypeError),
    ("exponential_decay_lr(0.1, -0.9, 10, 2, 1)", ValueError),
    ("exponential_decay_lr(1, 0.9, 10, 2, 1)", TypeError),
    ("cosine_decay_lr(0.1, 0.01, 10, 2, 2)", ValueError),
    ("polynomial_decay_lr(0.1, 0.01, 10, 2, 2, 0.0)", ValueError),
    ("warmup_lr(0.1, 10, 0, 3)", ValueError),
    ("warmup_lr(0.1, 10.0, 2, 3)", TypeError),
]


@pytest.fixture(scope="module")
def mindspore_lists():
    code = f"CASES = {CASES!r}\nBAD = {[c for c, _ in BAD]!r}\n" + """
for i, call in enumerate(CASES):
    outputs[f"case{i}"] = np.array(eval("nn." + call), np.float64)
for i, call in enumerate(BAD):
    try:
        eval("nn." + call)
        outputs[f"bad{i}"] = np.array("no error")
    except (TypeError, ValueError) as e:
        outputs[f"bad{i}"] = np.array(type(e).__name__)
"""
    return run_mindspore(code)


@requires_mindspore
@pytest.mark.mindspore
def test_lists_equal_mindspores(mindspore_lists):
    for i, call in enumerate(CASES):
        got = eval("nn." + call, {"nn": nn})
        assert isinstance(got, list) and all(isinstance(x, float) for x in got), call
        assert got == mindspore_lists[f"case{i}"].tolist(), call


@requires_mindspore
@pytest.mark.mindspore
def test_bad_arguments_raise_mindspores_exception_types(mindspore_lists):
    for i, (call, error) in enumerate(BAD):
        assert str(mindspore_lists[f"bad{i}"]) == error.__name__, call
        with pytest.raises(error):
            eval("nn." + call, {"nn": nn})


def test_a_list_drives_the_optimizer_step_by_step():
    import numpy as np

    from msjax import Parameter, Tensor

    lrs = nn.piecewise_constant_lr([1, 3], [0.5, 0.25])
    p = Parameter(np.zeros(2, np.float32), name="w")
    opt = nn.Momentum([p], lrs, 0.0)
    for _ in range(3):
        opt((Tensor(np.ones(2, np.float32)),))
    np.testing.assert_allclose(p.asnumpy(), [-1.0, -1.0])
