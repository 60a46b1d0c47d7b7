"""``msjax.nn`` optimizers (optax chains with MindSpore's state names) and learning-rate schedules."""
from msjax.nn.optim.ada_grad import Adagrad
from msjax.nn.optim.adam import Adam
from msjax.nn.optim.adam_weight_decay import AdamWeightDecay
from msjax.nn.optim.ftrl import FTRL
from msjax.nn.optim.lamb import Lamb
from msjax.nn.optim.lars import LARS
from msjax.nn.optim.learning_rate_schedule import *  # noqa: F401,F403
from msjax.nn.optim.learning_rate_schedule import __all__ as _lrs_all
from msjax.nn.optim.momentum import Momentum
from msjax.nn.optim.optimizer import Optimizer
from msjax.nn.optim.rmsprop import RMSProp
from msjax.nn.optim.sgd import SGD

__all__ = ["Optimizer", "Momentum", "SGD", "Adam", "AdamWeightDecay", "Lamb", "RMSProp", "Adagrad", "FTRL", "LARS",
           *_lrs_all]
