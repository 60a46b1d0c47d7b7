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
    "bits": (RNG.rand(3, 4) > 0.5).astype(np.float32),
    "w4": np.array([0.5, 1.0, 2.0, 1.5], np.float32),
    "logp": np.log(RNG.dirichlet(np.ones(5), 6)).astype(np.float32),
    "sparse_probs": np.where(RNG.rand(6, 5) > 0.3, RNG.dirichlet(np.ones(5), 6), 0).astype(np.float32),
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
    "l1_mean": ("nn.L1Loss()", "pred", "target"),
    "l1_sum": ("nn.L1Loss(reduction='sum')", "pred", "target"),
    "smooth_l1_none": ("nn.SmoothL1Loss()", "pred", "target"),
    "smooth_l1_beta_mean": ("nn.SmoothL1Loss(beta=0.5, reduction='mean')", "pred", "target"),
    "bce_logits_mean": ("nn.BCEWithLogitsLoss()", "pred", "bits"),
    "bce_logits_weights": ("nn.BCEWithLogitsLoss(reduction='none', weight=Tensor(inputs['w4']), "
                           "pos_weight=Tensor(inputs['w4'] * 2))", "pred", "bits"),
    "bce_logits_soft_sum": ("nn.BCEWithLogitsLoss(reduction='sum', pos_weight=Tensor(inputs['w4']))", "pred",
                            "target"),
    "nll_mean": ("nn.NLLLoss()", "logp", "labels"),
    "nll_weight_ignore": ("nn.NLLLoss(weight=Tensor(inputs['weight']))", "logp", "ignored"),
    "nll_none_ignore": ("nn.NLLLoss(reduction='none', ignore_index=2)", "logp", "labels"),
    "kldiv_mean": ("nn.KLDivLoss()", "logp", "probs"),
    "kldiv_batchmean": ("nn.KLDivLoss(reduction='batchmean')", "logp", "sparse_probs"),
    "kldiv_none": ("nn.KLDivLoss(reduction='none')", "logp", "sparse_probs"),
    "kldiv_sum": ("nn.KLDivLoss(reduction='sum')", "logits", "probs"),
}


SUM_LOSS = """
from mindspore import nn


class SumLoss(nn.Cell):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def construct(self, x, y):
        return self.loss(x, y).sum()
"""


@pytest.fixture(scope="module")
def mindspore_losses():
    code = f"CASES = {CASES!r}\nSUM_LOSS = {SUM_LOSS!r}\n" + """
import tempfile
helper = tempfile.mkdtemp()  # GRAPH_MODE compiles construct from its source file: a real module
with open(os.path.join(helper, "ms_sum_loss.py"), "w") as fh:
    fh.write(SUM_LOSS)
sys.path.insert(0, helper)
from ms_sum_loss import SumLoss
for case, (ctor, a, b) in CASES.items():
    loss_fn = eval(ctor)
    outputs[case] = loss_fn(Tensor(inputs[a]), Tensor(inputs[b])).asnumpy()
    outputs[case + "/grad"] = ms.grad(SumLoss(loss_fn))(Tensor(inputs[a]), Tensor(inputs[b])).asnumpy()
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


@requires_mindspore
@pytest.mark.mindspore
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_input_gradient_matches_mindspore(case, mindspore_losses):
    import jax
    import jax.numpy as jnp

    ctor, a, b = CASES[case]
    loss_fn = eval(ctor, {"nn": nn, "Tensor": Tensor, "inputs": INPUTS})
    grad = jax.grad(lambda x: jnp.sum(jnp.asarray(loss_fn(x, jnp.asarray(INPUTS[b])))))(jnp.asarray(INPUTS[a]))
    np.testing.assert_allclose(np.asarray(grad), mindspore_losses[case + "/grad"], rtol=1e-5, atol=1e-6)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="batchmean")  # only KLDivLoss takes 'batchmean'
    with pytest.raises(ValueError, match="beta"):
        nn.SmoothL1Loss(beta=0.0)
