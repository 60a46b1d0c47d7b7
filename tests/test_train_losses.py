"""Loss cells against real MindSpore (one subprocess for all cases)."""
import numpy as np
import pytest

from msjax import Tensor, nn
from oracle import requires_mindspore, run_mindspore

RNG = np.random.RandomState(0)
INPUTS = {
    "logits": RNG.randn(6, 5).astype(np.float32),
    "labels": np.array([0, 4, 2, 2, 1, 3], np.int32),
    "onehot": np.eye(5, dtype=np.float32)[[1, 0, 3, 3, 2, 4]],
    "probs": RNG.dirichlet(np.ones(5), 6).astype(np.float32),
    "ignored": np.array([0, -100, 2, 2, -100, 3], np.int32),
    "weight": np.array([1.0, 2.0, 0.5, 1.5, 1.0], np.float32),
    "pred": RNG.randn(3, 4).astype(np.float32),
    "target": RNG.randn(3, 4).astype(np.float32),
}
# name -> (constructor, first input, second input); the same text runs in MindSpore and here
CASES = {
    "sce_sparse_mean": ("nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction='mean')", "logits", "labels"),
    "sce_sparse_none": ("nn.SoftmaxCrossEntropyWithLogits(sparse=True)", "logits", "labels"),
    "sce_dense_sum": ("nn.SoftmaxCrossEntropyWithLogits(sparse=False, reduction='sum')", "logits", "onehot"),
    "ce_mean": ("nn.CrossEntropyLoss()", "logits", "labels"),
    "ce_weight_ignore": ("nn.CrossEntropyLoss(weight=Tensor(inputs['weight']))", "logits", "ignored"),
    "ce_smooth_sum": ("nn.CrossEntropyLoss(reduction='sum', label_smoothing=0.1)", "logits", "labels"),
    "ce_probs_none": ("nn.CrossEntropyLoss(reduction='none')", "logits", "probs"),
    "mse_mean": ("nn.MSELoss()", "pred", "target"),
    "mse_none": ("nn.MSELoss(reduction='none')", "pred", "target"),
}


@pytest.fixture(scope="module")
def mindspore_losses():
    code = f"CASES = {CASES!r}\n" + """
for case, (ctor, a, b) in CASES.items():
    outputs[case] = eval(ctor)(Tensor(inputs[a]), Tensor(inputs[b])).asnumpy()
"""
    return run_mindspore(code, INPUTS)


@requires_mindspore
@pytest.mark.mindspore
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_mindspore(case, mindspore_losses):
    ctor, a, b = CASES[case]
    inputs = INPUTS
    got = eval(ctor, {"nn": nn, "Tensor": Tensor, "inputs": inputs})(Tensor(INPUTS[a]), Tensor(INPUTS[b]))
    expected = mindspore_losses[case]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
