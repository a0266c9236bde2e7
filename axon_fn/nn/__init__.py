"""Graph constructors: each returns a node when given its input(s) (``dense(x, 10)``) and a
layer waiting for its input otherwise (``dense(10)``, used with ``>>``). All are re-exported
flat from :mod:`axon_fn`.

>>> import axon_fn
>>> model = axon_fn.input("x", shape=(None, 4)) >> dense(8) >> relu() >> dense(2)
>>> model.op
'dense'
"""

from . import activation as _activation
from . import attention as _attention
from . import combine as _combine
from . import dropout as _dropout
from . import linear as _linear
from . import normalization as _normalization
from . import recurrent as _recurrent
from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .combine import *  # noqa: F403
from .dropout import *  # noqa: F403
from .linear import *  # noqa: F403
from .normalization import *  # noqa: F403
from .recurrent import *  # noqa: F403

__all__ = [*_activation.__all__, *_attention.__all__, *_combine.__all__, *_dropout.__all__, *_linear.__all__,
           *_normalization.__all__, *_recurrent.__all__]
