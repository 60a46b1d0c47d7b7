"""msjax.common.initializer: MindSpore's names, shapes, bounds and seeding."""
import math

import numpy as np
import pytest

import msjax
from msjax.common.initializer import (Constant, HeNormal, HeUniform, Normal, One, TruncatedNormal, Uniform,
                                      XavierUniform, Zero, initializer)


@pytest.mark.parametrize("name, cls", [("zeros", Zero), ("ones", One), ("normal", Normal), ("uniform", Uniform),
                                       ("he_uniform", HeUniform), ("he_normal", HeNormal),
                                       ("xavier_uniform", XavierUniform), ("truncatedNormal", TruncatedNormal)])
def test_string_names_match_the_classes(name, cls):
    msjax.set_seed(3)
    by_name = initializer(name, (16, 8, 3, 3), msjax.float32).asnumpy()
    msjax.set_seed(3)
    by_class = initializer(cls(), (16, 8, 3, 3), msjax.float32).asnumpy()
    assert by_name.shape == (16, 8, 3, 3) and by_name.dtype == np.float32
    np.testing.assert_array_equal(by_name, by_class)


def test_bounds_follow_mindspore_formulas():
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    he = initializer(HeUniform(negative_slope=math.sqrt(5)), shape).asnumpy()
    bound = math.sqrt(3.0) * math.sqrt(2.0 / 6.0) / math.sqrt(fan_in)      # leaky_relu gain, slope sqrt(5)
    assert np.abs(he).max() <= bound and np.abs(he).max() > 0.9 * bound
    xavier = initializer(XavierUniform(), shape).asnumpy()
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(xavier).max() <= bound and np.abs(xavier).max() > 0.9 * bound
    # MindSpore 2.10's a/b are absolute bounds (its TruncatedNormal(sigma=0.5) reaches 1.99; with
    # sigma=1, a=-0.5, b=0.5 its largest |value| is 0.4999)
    wide = initializer(TruncatedNormal(sigma=0.5), (200000,)).asnumpy()
    assert 1.5 < np.abs(wide).max() <= 2.0
    narrow = initializer(TruncatedNormal(sigma=1.0, a=-0.5, b=0.5), (20000,)).asnumpy()
    assert 0.45 < np.abs(narrow).max() <= 0.5
    np.testing.assert_allclose(initializer(Normal(sigma=0.5), (20000,)).asnumpy().std(), 0.5, rtol=0.05)


def test_constants_arrays_and_dtypes():
    assert initializer(2.5, (2, 2), msjax.float16).asnumpy().tolist() == [[2.5, 2.5], [2.5, 2.5]]
    assert initializer(Constant(7), (3,), msjax.int32).dtype == msjax.int32
    np.testing.assert_array_equal(initializer(np.arange(3), (3,)).asnumpy(), [0, 1, 2])
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(4,\)"):
        initializer(np.arange(3), (4,))
    with pytest.raises(ValueError, match="unknown initializer name 'kaiming'"):
        initializer("kaiming", (2,))


def test_set_seed_makes_networks_reproducible():
    from msjax.models import LeNet5

    msjax.set_seed(11)
    a = [p.asnumpy() for p in LeNet5().get_parameters()]
    msjax.set_seed(11)
    b = [p.asnumpy() for p in LeNet5().get_parameters()]
    msjax.set_seed(12)
    c = [p.asnumpy() for p in LeNet5().get_parameters()]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
