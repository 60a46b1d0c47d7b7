"""``msjax.ops``: MindSpore's functional ops and primitive classes that networks use.

>>> from msjax import ops
>>> ops.ReLU()(Tensor(np.array([-1.0, 1.0], np.float32))).asnumpy()
array([0., 1.], dtype=float32)
"""
from msjax.ops.functional import *  # noqa: F401,F403
from msjax.ops.functional import __all__ as _functional_all
from msjax.ops.primitives import *  # noqa: F401,F403
from msjax.ops.primitives import __all__ as _primitives_all

__all__ = list(_functional_all) + list(_primitives_all)
