"""Ready-made optimizers (Optax's aliases): each is a :func:`chain` of transformations.

Learning rates are positive numbers or schedules ``count -> value``; the aliases descend.

>>> import numpy as np
>>> opt = adam(learning_rate=0.1)
>>> params = {"w": np.array([1.0, -1.0], np.float32)}
>>> updates, state = opt.update({"w": np.array([2.0, -0.5], np.float32)}, opt.init(params))
>>> apply_updates(params, updates)["w"]
array([ 0.9, -0.9], dtype=float32)
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np

from ..errors import InvalidArgumentError
from ..typing import DTypeLike, PyTree
from . import _validate
from ._fused import adam_moments_and_update
from .adaptive import ScaleByAdamState, _decay, _hyper, _increment, _is_concrete_scalar
from .base import EmptyState, GradientTransformation, chain, identity
from .base import apply_updates  # noqa: F401  (doctests)
from .combinators import masked
from .transforms import (
    add_decayed_weights, add_noise, clip_by_block_rms, ema, scale_by_adam, scale_by_adamax,
    scale_by_amsgrad, scale_by_belief, scale_by_factored_rms, scale_by_learning_rate,
    scale_by_lion, scale_by_param_block_rms, scale_by_radam, scale_by_rms, scale_by_rss,
    scale_by_stddev, scale_by_trust_ratio, scale_by_yogi, trace,
)
from .base import scale
from .schedules import Schedule

__all__ = [
    "sgd", "adam", "adamw", "nadam", "nadamw", "amsgrad", "adamax", "adamaxw", "radam",
    "adabelief", "adagrad", "rmsprop", "yogi", "lamb", "lars", "lion", "adafactor",
    "noisy_sgd", "fromage",
]


def _lr(learning_rate, where):
    """Check a learning rate (a non-negative number or a schedule) and return it."""
    if callable(learning_rate):
        return learning_rate
    if not _is_concrete_scalar(learning_rate):
        raise InvalidArgumentError(f"optim.{where}: `learning_rate` must be a number or a "
                                   f"schedule (count -> value), got {learning_rate!r}")
    if not float(learning_rate) >= 0 or not np.isfinite(float(learning_rate)):  # NaN too
        raise InvalidArgumentError(
            f"optim.{where}: `learning_rate` must be a finite number >= 0, got "
            f"{learning_rate!r}. The optimizers "
            "already descend (they scale updates by -learning_rate); for deliberate gradient "
            "ascent use scale_by_learning_rate(lr, flip_sign=False) or scale(+lr) in a chain")
    return learning_rate


def _momentum(momentum, nesterov, where):
    if momentum is None:
        return identity()
    _decay(momentum, where, "momentum")
    return trace(decay=momentum, nesterov=nesterov)


def sgd(learning_rate: float | Schedule, momentum: float | None = None, nesterov: bool = False,
        accumulator_dtype: DTypeLike | None = None) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    >>> opt = sgd(0.1, momentum=0.9)
    >>> u, s = opt.update(np.array([1.0]), opt.init(np.zeros(1)))
    >>> u
    array([-0.1])
    """
    lr = _lr(learning_rate, "sgd")
    if momentum is None:
        first = identity()
    else:
        _decay(momentum, "sgd", "momentum")
        first = trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    return chain(first, scale_by_learning_rate(lr))


def adam(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, mu_dtype: DTypeLike | None = None, *,
         nesterov: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2014); NAdam with ``nesterov=True``.

    >>> opt = adam(0.01)
    >>> np.round(opt.update(np.array([5.0]), opt.init(np.zeros(1)))[0], 6)
    array([-0.01])
    """
    learning_rate = _lr(learning_rate, "adam")
    chained = chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                    scale_by_learning_rate(learning_rate))
    if callable(learning_rate) or nesterov or mu_dtype is not None:
        return chained
    return _with_fused_step(chained, b1, b2, eps, eps_root, float(learning_rate))


def _with_fused_step(chained, b1, b2, eps, eps_root, learning_rate):
    """``chained`` (scale_by_adam, then a constant learning rate), with the step size folded
    into the fused Adam kernel: one pass per parameter, the same state and the same values."""
    def update(updates, state, params=None):
        if (isinstance(state, tuple) and len(state) == 2
                and isinstance(state[0], ScaleByAdamState) and isinstance(state[1], EmptyState)):
            adam_state = state[0]
            count = _increment(adam_state.count)
            fused = adam_moments_and_update(updates, adam_state.mu, adam_state.nu, b1, b2, eps,
                                            eps_root, count, scale=-learning_rate)
            if fused is not None:
                mu, nu, out = fused
                return out, (ScaleByAdamState(count, mu, nu), state[1])
        return chained.update(updates, state, params)

    return GradientTransformation(chained.init, update)


def nadam(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    """NAdam: Adam with Nesterov momentum (``adam(..., nesterov=True)``).

    >>> opt = nadam(0.01)
    >>> opt.update(np.array([5.0]), opt.init(np.zeros(1)))[0].shape
    (1,)
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


def adamw(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, mu_dtype: DTypeLike | None = None, weight_decay: float = 1e-4,
          mask: PyTree | Callable[[PyTree], PyTree] | None = None, *,
          nesterov: bool = False) -> GradientTransformation:
    """Adam with decoupled weight decay: ``-lr * (adam_update + weight_decay * params)``.

    >>> opt = adamw(0.1, weight_decay=0.5)
    >>> p = np.array([2.0])
    >>> np.round(opt.update(np.array([1.0]), opt.init(p), p)[0], 6)
    array([-0.2])
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(_lr(learning_rate, "adamw")))


def nadamw(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
           eps_root: float = 0.0, mu_dtype: DTypeLike | None = None, weight_decay: float = 1e-4,
           mask: PyTree | Callable[[PyTree], PyTree] | None = None) -> GradientTransformation:
    """AdamW with Nesterov momentum.

    >>> opt = nadamw(0.1)
    >>> p = np.array([2.0])
    >>> opt.update(np.array([1.0]), opt.init(p), p)[0].shape
    (1,)
    """
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=True)


def amsgrad(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            eps_root: float = 0.0, mu_dtype: DTypeLike | None = None) -> GradientTransformation:
    """AMSGrad: Adam with a non-decreasing second moment.

    >>> opt = amsgrad(0.1)
    >>> np.round(opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0], 6)
    array([-0.1])
    """
    return chain(scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype),
                 scale_by_learning_rate(_lr(learning_rate, "amsgrad")))


def adamax(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8) -> GradientTransformation:
    """Adamax: Adam with the infinity norm.

    >>> opt = adamax(0.1)
    >>> np.round(opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0], 6)
    array([-0.1])
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(_lr(learning_rate,
                                                                          "adamax")))


def adamaxw(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            weight_decay: float = 1e-4,
            mask: PyTree | Callable[[PyTree], PyTree] | None = None) -> GradientTransformation:
    """Adamax with decoupled weight decay.

    >>> opt = adamaxw(0.1, weight_decay=0.0)
    >>> p = np.zeros(1)
    >>> np.round(opt.update(np.array([2.0]), opt.init(p), p)[0], 6)
    array([-0.1])
    """
    return chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(_lr(learning_rate, "adamaxw")))


def radam(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, threshold: float = 5.0, *,
          nesterov: bool = False) -> GradientTransformation:
    """Rectified Adam (Liu et al., 2020).

    >>> opt = radam(0.1)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([-0.2])
    """
    return chain(scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
                 scale_by_learning_rate(_lr(learning_rate, "radam")))


def adabelief(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-16, eps_root: float = 1e-16, *,
              nesterov: bool = False) -> GradientTransformation:
    """AdaBelief (Zhuang et al., 2020); ``nesterov`` uses NAdam's look-ahead first moment.

    >>> opt = adabelief(0.1)
    >>> np.round(opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0], 6)
    array([-0.111111])
    """
    return chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
                 scale_by_learning_rate(_lr(learning_rate, "adabelief")))


def adagrad(learning_rate: float | Schedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    """Adagrad (Duchi et al., 2011).

    >>> opt = adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([-1.])
    """
    return chain(scale_by_rss(initial_accumulator_value, eps),
                 scale_by_learning_rate(_lr(learning_rate, "adagrad")))


def rmsprop(learning_rate: float | Schedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float | None = None, nesterov: bool = False) -> GradientTransformation:
    """RMSProp (Hinton), optionally centered and with (Nesterov) momentum applied after the
    learning rate.

    >>> opt = rmsprop(0.1, decay=0.75, eps=0.0)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0]
    array([-0.2])
    """
    if centered:
        first = scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt)
    else:
        first = scale_by_rms(decay, eps, initial_scale, eps_in_sqrt)
    return chain(first, scale_by_learning_rate(_lr(learning_rate, "rmsprop")),
                 _momentum(momentum, nesterov, "rmsprop"))


def yogi(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-3) -> GradientTransformation:
    """Yogi (Zaheer et al., 2018).

    >>> opt = yogi(0.1)
    >>> opt.update(np.array([2.0]), opt.init(np.zeros(1)))[0].shape
    (1,)
    """
    return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(_lr(learning_rate, "yogi")))


def lamb(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         eps_root: float = 0.0, weight_decay: float = 0.0,
         mask: PyTree | Callable[[PyTree], PyTree] | None = None) -> GradientTransformation:
    """LAMB (You et al., 2019): Adam plus weight decay, rescaled per leaf by the trust ratio.

    >>> opt = lamb(0.1)
    >>> p = np.array([3.0, 4.0])
    >>> np.round(opt.update(np.array([1.0, 1.0]), opt.init(p), p)[0], 6)
    array([-0.353553, -0.353553])
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
                 scale_by_trust_ratio(), scale_by_learning_rate(_lr(learning_rate, "lamb")))


def lars(learning_rate: float | Schedule, weight_decay: float = 0.0,
         weight_decay_mask: bool | PyTree | Callable[[PyTree], PyTree] = True,
         trust_coefficient: float = 0.001, eps: float = 0.0,
         trust_ratio_mask: bool | PyTree | Callable[[PyTree], PyTree] = True, momentum: float = 0.9,
         nesterov: bool = False) -> GradientTransformation:
    """LARS (You et al., 2017): weight decay, per-leaf trust ratio, learning rate, momentum.

    >>> opt = lars(1.0)
    >>> p = np.array([3.0, 4.0])
    >>> np.round(opt.update(np.array([0.0, 2.0]), opt.init(p), p)[0], 6)
    array([ 0.   , -0.005])
    """
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
                        mask=trust_ratio_mask),
                 scale_by_learning_rate(_lr(learning_rate, "lars")),
                 trace(decay=_decay(momentum, "lars", "momentum"), nesterov=nesterov))


def lion(learning_rate: float | Schedule, b1: float = 0.9, b2: float = 0.99,
         mu_dtype: DTypeLike | None = None, weight_decay: float = 1e-3,
         mask: PyTree | Callable[[PyTree], PyTree] | None = None) -> GradientTransformation:
    """Lion (Chen et al., 2023): sign of an interpolated momentum, plus weight decay.

    >>> opt = lion(0.1, weight_decay=0.0)
    >>> p = np.zeros(2)
    >>> opt.update(np.array([0.5, -3.0]), opt.init(p), p)[0]
    array([-0.1,  0.1])
    """
    return chain(scale_by_lion(b1, b2, mu_dtype), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(_lr(learning_rate, "lion")))


def adafactor(learning_rate: float | Schedule | None = None, min_dim_size_to_factor: int = 128,
              decay_rate: float = 0.8, decay_offset: int = 0,
              multiply_by_parameter_scale: bool = True, clipping_threshold: float = 1.0,
              momentum: float | None = None, dtype_momentum: DTypeLike = np.float32,
              weight_decay_rate: float | None = None, eps: float = 1e-30, factored: bool = True,
              weight_decay_mask: PyTree | Callable[[PyTree], PyTree] | None = None,
              ) -> GradientTransformation:
    """Adafactor (Shazeer & Stern, 2018): factored second moments, update clipping, relative
    step sizes. With ``learning_rate=None`` the step is the parameter scale alone.

    >>> opt = adafactor(0.1)
    >>> p = np.full(2, 2.0)
    >>> np.round(opt.update(np.array([3.0, -3.0]), opt.init(p), p)[0], 6)
    array([-0.2,  0.2])
    """
    txs = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor,
                                 eps)]
    if clipping_threshold is not None:
        txs.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        txs.append(scale_by_learning_rate(_lr(learning_rate, "adafactor"), flip_sign=False))
    if multiply_by_parameter_scale:
        txs.append(scale_by_param_block_rms())
    if momentum is not None:
        txs.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        txs.append(add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    txs.append(scale(-1.0))
    return chain(*txs)


def noisy_sgd(learning_rate: float | Schedule, eta: float = 0.01, gamma: float = 0.55,
              seed: int = 0) -> GradientTransformation:
    """SGD with annealed Gaussian gradient noise (Neelakantan et al., 2015).

    >>> opt = noisy_sgd(0.1)
    >>> opt.update(np.ones(2, np.float32), opt.init(np.zeros(2, np.float32)))[0].dtype
    dtype('float32')
    """
    return chain(add_noise(eta, gamma, seed),
                 scale_by_learning_rate(_lr(learning_rate, "noisy_sgd")))


def fromage(learning_rate: float | Schedule, min_norm: float = 1e-6) -> GradientTransformation:
    """Fromage (Bernstein et al., 2020): trust-ratio steps with a norm-preserving shrink
    ``p <- (p - lr * u * ||p|| / ||u||) / sqrt(1 + lr^2)``. ``learning_rate`` must be a
    number (the shrink factor depends on it).

    >>> opt = fromage(0.1)
    >>> p = np.array([3.0, 4.0])
    >>> opt.update(np.array([1.0, 0.0]), opt.init(p), p)[0].shape
    (2,)
    """
    if callable(learning_rate):
        raise InvalidArgumentError("optim.fromage: `learning_rate` must be a number; the "
                                   "shrink factor 1/sqrt(1 + lr^2) is fixed at construction")
    lr = _hyper(_lr(learning_rate, "fromage"), "fromage", "learning_rate")
    mult = 1.0 / (1.0 + lr ** 2) ** 0.5
    return chain(scale_by_trust_ratio(min_norm), scale_by_learning_rate(lr * mult),
                 add_decayed_weights(mult - 1.0))


def _checking(alias):
    """``alias`` whose transformation checks its arguments (see ``_validate.checked``); defined
    here so that the wrapper keeps the alias's module, name and doctest."""
    signature = inspect.signature(alias)

    @functools.wraps(alias)
    def make(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            bound = None  # the call itself raises the usual TypeError below
        weight_decay = bound.arguments.get("weight_decay") if bound else None
        if weight_decay is not None and not callable(weight_decay) and (
                not _is_concrete_scalar(weight_decay) or not float(weight_decay) >= 0):
            raise InvalidArgumentError(f"optim.{alias.__name__}: `weight_decay` must be a "
                                       f"number >= 0, got {weight_decay!r}")
        _nesting[0] += 1  # nadam calls adam: only the outer alias checks, under its own name
        try:
            transform = alias(*args, **kwargs)
        finally:
            _nesting[0] -= 1
        return transform if _nesting[0] else _validate.checked(transform,
                                                                f"optim.{alias.__name__}")

    return make


_nesting = [0]


for _name in __all__:  # every alias checks gradients, parameters and state against each other
    globals()[_name] = _checking(globals()[_name])
del _name
