"""Loop factories: ``trainer(model, loss, optimizer)`` and ``evaluator(model)``.

A batch is ``(inputs, targets)``: inputs an array or ``{input name: array}``, targets an array
(or a dict/tuple matching a multi-output model). The model is initialized from the first
batch (deterministically from ``seed``) unless ``run`` is given an initial ``ModelState``.

>>> import numpy as np, axon_fn
>>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1)
>>> x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
>>> y = x @ np.array([[2.0], [-1.0]], np.float32)
>>> final = trainer(model, "mean_squared_error", "adam", learning_rate=0.05).run(
...     [(x, y)] * 4, epochs=25)
>>> final.history[-1]["loss"] < 0.1 * final.history[0]["loss"]
True
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .._dtypes import is_real_floating
from .. import distributed as _dist
from .. import losses as _losses
from .. import optim as _optim
from .. import random as _random
from .._checks import by_name
from ..autodiff import value_and_grad
from ..backend import device_put, is_gpu_array
from ..build import build, check_state
from ..errors import AxonTypeError, InvalidArgumentError, StagingError
from ..model_state import ModelState
from ..staging import jit
from .core import Loop
from .metric_specs import MetricSpec

__all__ = ["trainer", "evaluator", "TrainState", "EvalState"]


class TrainState(NamedTuple):
    """The step state of a trainer: model and optimizer state, the PRNG key, the last batch's
    targets, predictions and loss, and the loss scale."""

    model_state: Any = None
    optimizer_state: Any = None
    key: Any = None
    y_true: Any = None
    y_pred: Any = None
    loss: Any = None
    loss_scale: Any = None


class EvalState(NamedTuple):
    """The step state of an evaluator: the model state and the last targets and predictions."""

    model_state: Any = None
    y_true: Any = None
    y_pred: Any = None


def _resolve_loss(loss, where="trainer"):
    if isinstance(loss, str):
        return by_name(_losses, loss, "loss", where, "pass a function (y_true, y_pred) -> scalar")
    if callable(loss):
        return loss
    raise AxonTypeError(f"{where}: `loss` must be a loss name or a function (y_true, y_pred) -> "
                        f"scalar, got {loss!r}")


def _combined_loss(loss, loss_weights):
    """One loss for single outputs; a dict/tuple of losses (weighted) for several outputs."""
    if isinstance(loss, (dict, list, tuple)):
        losses = optree.tree_map(_resolve_loss, loss)
        weights = loss_weights if loss_weights is not None else optree.tree_map(
            lambda _: 1.0, losses)

        def total(y_true, y_pred):
            terms = optree.tree_map(lambda fn, w, t, p: w * fn(t, p), losses, weights, y_true,
                                    y_pred, none_is_leaf=False)
            return sum(optree.tree_leaves(terms))
        return total
    return _resolve_loss(loss)


def _resolve_optimizer(optimizer, learning_rate):
    if isinstance(optimizer, str):
        factory = by_name(_optim, optimizer, "optimizer", "trainer",
                          "pass an axon_fn.optim transformation")
        return factory(1e-3 if learning_rate is None else learning_rate)
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        if learning_rate is not None:
            raise InvalidArgumentError("trainer: `learning_rate` is for an optimizer given by "
                                       "name; a transformation carries its own")
        return optimizer
    raise AxonTypeError(f"trainer: `optimizer` must be a name or an axon_fn.optim "
                        f"GradientTransformation, got {optimizer!r}")


def _split_batch(batch, where):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise AxonTypeError(f"{where}: each batch must be a pair (inputs, targets), got "
                            f"{type(batch).__name__}"
                            f"{' of length ' + str(len(batch)) if hasattr(batch, '__len__') else ''}")
    return batch[0], batch[1]


def _check_device(device, where):
    if not (isinstance(device, str) and (device == "cuda" or device.startswith("cuda:"))):
        raise InvalidArgumentError(f"{where}: `device` must be None, 'cuda' or 'cuda:N', got "
                                   f"{device!r}")


def _require_cupy(where):
    """A GPU device needs CuPy: say how to get it, rather than fail at the first batch."""
    import importlib.util
    import sys

    if "cupy" in sys.modules:
        return
    try:
        found = importlib.util.find_spec("cupy") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise InvalidArgumentError(f"{where}: device='cuda' needs CuPy, which is not installed; "
                                   f"install the GPU extra: pip install 'axon_fn[gpu]' (or a "
                                   f"cupy-cudaXXx wheel matching your CUDA version)")


def _device_of(tree):
    """``"cpu"``, or ``"cuda:N"`` for the GPU holding the first array of ``tree``."""
    for leaf in optree.tree_leaves(tree):
        if is_gpu_array(leaf):
            return f"cuda:{leaf.device.id}"
    return "cpu"


def _as_state(init_state, where):
    if init_state is None or isinstance(init_state, TrainState):
        return init_state
    if isinstance(init_state, ModelState):
        return TrainState(model_state=init_state)
    raise AxonTypeError(f"{where}: run's init_state must be a ModelState or a TrainState, got "
                        f"{type(init_state).__name__}")


def trainer(model: Any, loss: Any, optimizer: Any, *, learning_rate: Any = None, seed: int = 0,
            loss_weights: Optional[Sequence[float]] = None, clip_norm: Optional[float] = None,
            accumulate_steps: int = 1, loss_scale: Any = None, compile: Any = "auto",
            device: Optional[str] = None, distributed: bool = False, shard: bool = True) -> Loop:
    """A Loop that trains ``model``: one optimizer step per batch ``(inputs, targets)``.

    * ``loss``: a name from :mod:`axon_fn.losses` (``"categorical_cross_entropy"`` expects
      probabilities: use a softmax output or pass a function with ``from_logits=True``), a
      function ``(y_true, y_pred) -> scalar``, or for a multi-output model a dict/tuple of them
      with optional ``loss_weights`` of the same structure.
    * ``optimizer``: a name from :mod:`axon_fn.optim` (with ``learning_rate``) or a
      transformation. ``clip_norm`` clips the global gradient norm first; ``accumulate_steps``
      averages the gradients of that many batches per update (``optim.MultiSteps``).
    * ``loss_scale``: an ``optim.DynamicLossScale`` / ``StaticLossScale`` for float16 training
      (``"dynamic"`` is ``optim.DynamicLossScale()``, starting at 2**15); steps with
      non-finite gradients are skipped. See ``guides/mixed_precision.md``.
    * ``compile``: the step (forward, backward and optimizer update) runs under
      :func:`axon_fn.jit`, recorded once per batch shape and replayed after. ``"auto"`` falls
      back to running it eagerly when it cannot be compiled (Python control flow on array
      values in a custom loss or layer, ``MultiSteps`` or ``inject_hyperparams``, a loss
      scale); ``True`` raises the :class:`~axon_fn.StagingError` instead; ``False``
      always runs eagerly.
    * ``device``: ``"cuda"`` or ``"cuda:N"`` trains on that GPU (needs CuPy). The model
      state, optimizer state and key are put there once, each batch is copied there before its
      step, and the loss is averaged there and read once an epoch, so steps queue up on the
      GPU without waiting for the host. ``None`` (the default) computes where the arrays are.
    * ``distributed=True``: data-parallel training over the ranks of an MPI job
      (:mod:`axon_fn.distributed`; alone, it changes nothing). The initial model and optimizer
      state are broadcast from rank 0; with ``shard=True`` every rank gets the same global
      batches and uses rows ``rank::world_size`` of each (``shard=False``: each rank's data is
      its own); each step averages the gradients, the loss and the batch-norm statistics over
      the ranks in one allreduce (weighted by each rank's rows), so every rank applies the same
      update and sees the same loss and metrics (computed on the gathered predictions). Each
      rank folds its rank into its dropout key. Only rank 0 writes checkpoints, logs and
      progress. See ``guides/distributed.md``.

    The step differentiates with respect to the trainable parameters only, carries batch-norm
    state, and splits a fresh dropout key from ``seed`` each step (when the model has random
    layers). The loop tracks ``loss``.
    """
    if compile not in ("auto", True, False):
        raise InvalidArgumentError(f"trainer: `compile` must be 'auto', True or False, got "
                                   f"{compile!r}")
    if device is not None:
        _check_device(device, "trainer")
        _require_cupy("trainer")
    if isinstance(loss_scale, str):
        if loss_scale != "dynamic":
            raise InvalidArgumentError(f"trainer: `loss_scale` must be 'dynamic', a loss scale "
                                       f"from axon_fn.optim or None, got {loss_scale!r}")
        loss_scale = _optim.DynamicLossScale()
    if compile is True and loss_scale is not None:
        raise InvalidArgumentError("trainer: a step with a loss scale cannot be compiled (it "
                                   "skips steps by the gradients' values); use compile='auto' "
                                   "or False")
    loss_fn = _combined_loss(loss, loss_weights)
    transform = _resolve_optimizer(optimizer, learning_rate)
    if clip_norm is not None:
        transform = _optim.chain(_optim.clip_by_global_norm(clip_norm), transform)
    if accumulate_steps != 1:
        transform = _optim.MultiSteps(transform, accumulate_steps)
    init_model, train_fn = build(model, mode="train")
    ranks = _distributed_ranks(distributed, shard, "trainer")
    sync = _dist.broadcast if ranks > 1 else (lambda tree: tree)

    def to_device(state):
        return state._replace(**device_put({"model_state": state.model_state, "optimizer_state":
                                            state.optimizer_state, "key": state.key}, device))

    def init_fn(init_state):
        state = _as_state(init_state, "trainer")
        if state is None:
            return TrainState()
        if state.model_state is not None:  # shapes are checked at the first step
            check_state(model, state.model_state, "trainer: run's init_state")
        state = sync(state)  # every rank starts from rank 0's state
        return state if device is None else to_device(state)

    def train_step(model_state, opt_state, key, scale, inputs, targets, rows=None):
        # a fresh dropout key each step; a model that draws nothing keeps its key
        key, step_key = _random.split(key) if train_fn.stochastic_layers else (key, None)
        if step_key is not None and ranks > 1:  # each rank draws its own dropout masks
            step_key = _random.fold_in(step_key, _dist.rank())

        def objective(trainable):
            y_pred, new_state = train_fn(model_state.replace(trainable=trainable), inputs,
                                         key=step_key)
            value = loss_fn(targets, y_pred)
            return scale.scale(value), (value, y_pred, new_state)

        (_, (value, y_pred, new_state)), grads = value_and_grad(objective, has_aux=True)(
            model_state.trainable)
        grads = scale.unscale(grads)
        if rows is not None:  # data-parallel: one allreduce, recorded as one step under jit
            grads, value, new_state = _synchronize(grads, value, new_state, rows)
        # only a loss scale skips steps with non-finite gradients (checking costs a pass over
        # every gradient); without one a NaN shows in the loss, where nan_guard looks
        finite = _optim.all_finite(grads) if loss_scale is not None else True
        scale = scale.adjust(finite)
        trainable = model_state.trainable
        if bool(finite):
            updates, opt_state = transform.update(grads, opt_state, trainable)
            trainable = _optim.apply_updates(trainable, updates)
        return TrainState(new_state.replace(trainable=trainable), opt_state, key, targets,
                          y_pred, value, scale if loss_scale is not None else None)

    # a loss scale's skip is Python control flow on the gradients' values: never compiled
    run_step = _compiled_or_eager(train_step, compile=compile if loss_scale is None else False)

    def on_device(tree):
        return tree if device is None else device_put(tree, device)

    def step_fn(batch, s):
        if device is not None and s.key is not None and not is_gpu_array(s.key):
            s = to_device(s)  # a state resumed from a checkpoint comes back on the host
        inputs, targets = _split_batch(batch, "trainer")
        if shard and ranks > 1:
            inputs, targets = _dist.shard((inputs, targets), where="trainer")
        model_state = s.model_state
        if model_state is None:  # initialized on the host, from the batch as it comes
            model_state = on_device(sync(init_model(inputs,
                                                    _random.fold_in(_random.key(seed), 0))))
        inputs, targets = on_device((inputs, targets))
        key = on_device(_random.key(seed)) if s.key is None else s.key
        opt_state = transform.init(model_state.trainable) if s.optimizer_state is None \
            else s.optimizer_state
        scale = s.loss_scale if s.loss_scale is not None else (
            loss_scale if loss_scale is not None else _optim.NoOpLossScale())
        # a diverging step yields inf/NaN quietly, as in PyTorch; nan_guard is the check
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return run_step(model_state, opt_state, key, scale, inputs, targets,
                            *((_rows(inputs),) if ranks > 1 else ()))

    loss_metric = MetricSpec("loss", lambda value: value, transform=lambda s: s.loss,
                             evaluation=MetricSpec("loss", loss_fn))
    loop = Loop(step_fn, init_fn, output_transform=_outputs(ranks)).metric(loss_metric)
    return loop.handle("started", _check_world(ranks), name="distributed") if ranks > 1 \
        else loop


def evaluator(model: Any, *, distributed: bool = False, shard: bool = True) -> Loop:
    """A Loop that runs ``model`` in inference mode over ``(inputs, targets)`` batches; give
    it the model state as ``run(data, model_state)`` and add metrics with ``.metric``. Batches
    are copied to the device the model state is on (a GPU state evaluates on the GPU).
    ``distributed=True`` (see :func:`trainer`): the model state is broadcast from rank 0, each
    rank predicts its rows of each batch (``shard=True``) or its own batches, and the metrics
    see every rank's predictions. The model runs under :func:`axon_fn.jit` (compiled per batch
    shape), or eagerly when it cannot be compiled.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.softmax()
    >>> state = axon_fn.init(model)
    >>> batches = [(np.array([[2.0, 0.0]]), np.array([[1.0, 0.0]]))]
    >>> evaluator(model).metric("accuracy").run(batches, state).history
    [{'accuracy': 1.0}]
    """
    _, predict_fn = build(model)
    ranks = _distributed_ranks(distributed, shard, "evaluator")
    predict = _compiled_or_eager(predict_fn)  # a layer branching on values runs eagerly

    def init_fn(init_state):
        if isinstance(init_state, TrainState):
            init_state = init_state.model_state
        if not isinstance(init_state, ModelState):
            raise AxonTypeError(f"evaluator: run's init_state must be the model's ModelState, "
                                f"got {type(init_state).__name__}")
        return EvalState(_dist.broadcast(init_state) if ranks > 1 else init_state)

    def step_fn(batch, s):
        inputs, targets = _split_batch(batch, "evaluator")
        if shard and ranks > 1:
            inputs, targets = _dist.shard((inputs, targets), where="evaluator")
        device = _device_of(s.model_state)
        if device != "cpu":
            inputs, targets = device_put((inputs, targets), device)
        return EvalState(s.model_state, targets, predict(s.model_state, inputs))

    return Loop(step_fn, init_fn, output_transform=_outputs(ranks))


def _compiled_or_eager(fn, compile="auto"):
    """``fn`` run under :func:`axon_fn.jit`; with ``compile="auto"`` it falls back to running
    eagerly for good at the first :class:`StagingError` (``True`` raises it, ``False`` never
    compiles)."""
    compiled = jit(fn) if compile else None

    def run(*args):
        nonlocal compiled
        if compiled is not None:
            try:
                return compiled(*args)
            except StagingError:
                if compile is True:
                    raise
                compiled = None  # this function cannot be compiled: run it eagerly
        return fn(*args)

    return run


def _distributed_ranks(distributed, shard, where):
    """The world size a loop runs on (1 unless ``distributed``); checks the two flags."""
    for value, name in ((distributed, "distributed"), (shard, "shard")):
        if not isinstance(value, bool):
            raise AxonTypeError(f"{where}: `{name}` must be True or False, got {value!r}")
    return _dist.init() if distributed else 1


def _rows(inputs):
    """The number of rows of a batch's inputs (the first array's leading dimension)."""
    for leaf in optree.tree_leaves(inputs):
        if getattr(leaf, "ndim", 0):
            return int(leaf.shape[0])
    return 1


def _synchronize(grads, value, model_state, rows):
    """Gradients, loss and floating layer state (batch-norm statistics) averaged over the
    ranks, each weighted by its ``rows``: one flat allreduce (a single step of a compiled
    program)."""
    grad_leaves, grad_tree = optree.tree_flatten(grads)
    state_leaves, state_tree = optree.tree_flatten(model_state.state)
    floats = [i for i, leaf in enumerate(state_leaves) if is_real_floating(leaf.dtype)]
    out = _dist.sync_step(*grad_leaves, value, *[state_leaves[i] for i in floats], rows=rows)
    n = len(grad_leaves)
    for i, reduced in zip(floats, out[n + 1:]):
        state_leaves[i] = reduced
    new_state = model_state.replace(state=state_tree.unflatten(state_leaves)) if floats \
        else model_state
    return grad_tree.unflatten(list(out[:n])), out[n], new_state


def _outputs(ranks):
    """The loop's metric inputs: ``(y_true, y_pred)``, gathered from every rank in a
    distributed loop (so metrics are those of the whole global batch)."""
    if ranks > 1:
        return lambda s: _dist.gather_rows((s.y_true, s.y_pred))
    return lambda s: (s.y_true, s.y_pred)


def _check_world(ranks):
    """A handler on ``started`` recording the world size, and refusing to resume a run on
    another number of ranks (each rank's rows and dropout keys depend on it)."""
    def check(state):
        record = state.handler_data.get("distributed")
        if record is not None and record.get("world_size") != ranks:
            raise InvalidArgumentError(
                f"trainer: this run was saved by {record.get('world_size')} ranks and now runs "
                f"on {ranks}; resume it with the same number of ranks (mpiexec -n "
                f"{record.get('world_size')}), or start a new run from its model state")
        data = {**state.handler_data, "distributed": {"world_size": ranks}}
        return "continue", state.replace(handler_data=data)

    return check
