"""MindSpore's nn layers on msjax's Cell (NCHW layouts, MindSpore parameter names and order)."""
from msjax.nn.layer.activation import *  # noqa: F401,F403
from msjax.nn.layer.activation import __all__ as _activation
from msjax.nn.layer.basic import *  # noqa: F401,F403
from msjax.nn.layer.basic import __all__ as _basic
from msjax.nn.layer.container import *  # noqa: F401,F403
from msjax.nn.layer.container import __all__ as _container
from msjax.nn.layer.conv import *  # noqa: F401,F403
from msjax.nn.layer.conv import __all__ as _conv
from msjax.nn.layer.conv_transpose import *  # noqa: F401,F403
from msjax.nn.layer.conv_transpose import __all__ as _conv_transpose
from msjax.nn.layer.embedding import *  # noqa: F401,F403
from msjax.nn.layer.embedding import __all__ as _embedding
from msjax.nn.layer.normalization import *  # noqa: F401,F403
from msjax.nn.layer.normalization import __all__ as _normalization
from msjax.nn.layer.padding import *  # noqa: F401,F403
from msjax.nn.layer.padding import __all__ as _padding
from msjax.nn.layer.pooling import *  # noqa: F401,F403
from msjax.nn.layer.pooling import __all__ as _pooling
from msjax.nn.layer.upsample import *  # noqa: F401,F403
from msjax.nn.layer.upsample import __all__ as _upsample
from msjax.nn.layer.rnns import *  # noqa: F401,F403
from msjax.nn.layer.rnns import __all__ as _rnns
from msjax.nn.layer.transformer import *  # noqa: F401,F403
from msjax.nn.layer.transformer import __all__ as _transformer

__all__ = [*_activation, *_basic, *_container, *_conv, *_conv_transpose, *_embedding, *_normalization,
           *_padding, *_pooling, *_upsample, *_rnns,
           *_transformer]
