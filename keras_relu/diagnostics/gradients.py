"""Gradient norms and update ratios of a model's weights during `fit`.

`GradientMonitor` evaluates the model's own compiled loss (`model.compute_loss`,
regularization losses included) on a fixed probe batch and differentiates it with
respect to every trainable weight, as `fit`'s training step does, on TensorFlow,
JAX and PyTorch:
```
grad_norm               ||g||                          over every trainable weight
grad_norm/<layer>       ||g_layer||                    over that layer's trainable weights
update_ratio/<layer>    ||w_after - w_before|| / ||w_before||     over the last step
```
The update ratio is taken over the last real weight update by the optimizer before
the measurement (`UpdateRatioTracker`: a `steps_per_execution` group of steps where
that is above 1; not an accumulate-only step of `gradient_accumulation_steps`, not
the end of a dataset of unknown length, not an edit announced with
`before_weight_edit` such as a revival), not over the whole interval since the
previous measurement: so it does not grow with the interval, and it is the quantity
the "about 1e-3 is healthy" rule of thumb is about.

Layers are named as `activation_stats` names them, the layers of a nested model as
"outer/inner"; but weights are counted once: a layer (or nested model) called
twice has one set of weights, reported under its name without "@1". Layers without
trainable weights (activations other than PReLU, frozen layers) are left out.
"""

import math
import warnings
import weakref

import keras
import numpy as np

from keras_relu import _keras_integration

_ON_TRAIN_BEGIN = "train_begin"


class GradientWarning(UserWarning):
    """A gradient is not finite, has exploded, or a layer's updates stay too large."""


def loss_gradients(model, x, y, sample_weight=None, training=False, loss_scale=1.0, state=None):
    """The model's compiled loss on `(x, y, sample_weight)` and its gradients.

    One branch per backend, each differentiating `compute_loss` (regularization
    losses included) as that backend's `train_step` does. The loss is multiplied by
    `loss_scale` before differentiating and the gradients divided by it after (mixed
    precision: float16 gradients that would underflow unscaled). Runs eagerly;
    `GradientMonitor` compiles it.

    Args:
        model: A compiled Keras model.
        x, y, sample_weight: One batch, as `fit` takes it.
        training: Whether the layers run in training mode (dropout on, BatchNorm on
            the batch's statistics). Default: False. With True, TensorFlow and torch
            update BatchNorm's moving statistics (`GradientMonitor` restores them).
        loss_scale: See above. Default: 1.0.
        state: JAX only: the values of the model's trainable, non-trainable and
            metrics variables (and optimizer variables), as arguments of a jitted
            caller. Default: the variables' current values.

    Returns:
        `(loss, gradients)`: the unscaled loss, and one gradient per
        `model.trainable_variables` (zeros where the loss does not depend on it).
    """
    variables = model.trainable_variables
    backend = keras.config.backend()
    if backend == "tensorflow":
        # fit's TensorFlow train_step: a GradientTape around the call and compute_loss.
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = model(x, training=training)
            loss = _keras_integration.compute_loss(model, x, y, y_pred, sample_weight, training)
            scaled = keras.ops.multiply(loss, loss_scale)
        gradients = tape.gradient(scaled, variables)
    elif backend == "jax":
        # fit's JAX train_step: jax.grad of the stateless compute_loss_and_updates
        # (stateless_call, then stateless_compute_loss) at the given state.
        import jax

        trainable, non_trainable, metrics, optimizer = state or jax_state(model)

        def scaled_loss(trainable_values):
            _, (loss, *_) = model.compute_loss_and_updates(
                trainable_values,
                non_trainable,
                metrics,
                x,
                y,
                sample_weight,
                training=training,
                optimizer_variables=optimizer,
            )
            return keras.ops.multiply(loss, loss_scale), loss

        gradients, loss = jax.grad(scaled_loss, has_aux=True)(trainable)
    elif backend == "torch":
        # fit's torch train_step: autograd through the call and compute_loss;
        # autograd.grad leaves the parameters' .grad as they are.
        import torch

        y_pred = model(x, training=training)
        loss = _keras_integration.compute_loss(model, x, y, y_pred, sample_weight, training)
        gradients = torch.autograd.grad(
            keras.ops.multiply(loss, loss_scale), [v.value for v in variables], allow_unused=True
        )
        loss = loss.detach()
    else:
        raise NotImplementedError(f"GradientMonitor does not support the {backend} backend.")
    gradients = [
        keras.ops.zeros(v.shape, v.dtype) if g is None else keras.ops.divide(g, loss_scale)
        for g, v in zip(gradients, variables, strict=True)
    ]
    return loss, gradients


def jax_state(model):
    """The current values of `model`'s variables, as `loss_gradients(state=...)` takes them."""
    optimizer = getattr(model, "optimizer", None)
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.metrics_variables],
        [v.value for v in optimizer.variables] if optimizer is not None else None,
    )


def _gradient_function(model, training):
    """`loss_gradients` as `f(x, y, sample_weight, loss_scale)`, compiled as the model's
    train step is: eager under `run_eagerly`, else a `tf.function` (with XLA where
    `jit_compile` is on) or, where `jit_compile` is on, `jax.jit`; torch runs eagerly
    (Keras compiles torch steps only with `jit_compile=True`, which it leaves off)."""
    backend = keras.config.backend()

    def gradients(x, y, sample_weight, loss_scale, state=None):
        return loss_gradients(model, x, y, sample_weight, training, loss_scale, state)

    if backend == "tensorflow" and model.run_eagerly:
        return _in_replica_context(gradients, model.distribute_strategy)
    if model.run_eagerly or backend == "torch":
        return gradients
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(
            _in_replica_context(gradients, model.distribute_strategy),
            jit_compile=bool(model.jit_compile),
            reduce_retracing=True,
        )
    if backend == "jax":
        import jax

        compiled = jax.jit(gradients) if model.jit_compile else gradients
        # The weights are arguments: a jitted function must not capture them.
        return lambda x, y, sample_weight, loss_scale: compiled(
            x, y, sample_weight, loss_scale, jax_state(model)
        )
    return gradients


def loss_gradient_function(model, training=False):
    """`loss_gradients` of `model`, compiled as its train step is, for repeated use.

    What `GradientMonitor` evaluates on its probe, for any batch: a `tf.function`
    (with XLA under `jit_compile`) or `jax.jit` traced once, eager under `run_eagerly`
    and on torch. The weights are read at each call.

    Args:
        model: A compiled Keras model.
        training: Whether the layers run in training mode (see `loss_gradients`).
            Default: False.

    Returns:
        `f(x, y, sample_weight=None)` returning `(loss, gradients)` as
        `loss_gradients` does: one gradient per `model.trainable_variables` at the
        time of the call that traced it.

    Example:
    >>> gradients = loss_gradient_function(model)
    >>> loss, grads = gradients(x_batch, y_batch)
    >>> [float(np.linalg.norm(keras.ops.convert_to_numpy(g))) for g in grads]
    """
    function = _gradient_function(model, training)
    one = np.asarray(1.0, dtype="float32")

    def gradients(x, y, sample_weight=None):
        return function(x, y, sample_weight, one)

    return gradients


def _in_replica_context(gradients, strategy):
    """`gradients` run by a `tf.distribute` strategy, whose variables can only be read in
    a replica context: every replica evaluates the whole probe, the first one's result
    is returned, and the division by the replica count that Keras's losses apply under
    a strategy is undone. Without a strategy, TensorFlow's default one just calls it."""
    import tensorflow as tf

    def replicated(x, y, sample_weight, loss_scale):
        results = strategy.run(gradients, args=(x, y, sample_weight, loss_scale))
        loss, grads = tf.nest.map_structure(
            lambda value: strategy.experimental_local_results(value)[0], results
        )
        replicas = strategy.num_replicas_in_sync
        return loss * replicas, [g * replicas for g in grads]

    return replicated


def weight_groups(model):
    """`{layer_path: [trainable variables]}` in layer order, each variable once.

    Nested models are entered ("outer/inner"); a layer's own sublayers (a custom
    layer holding Dense layers) are counted under it. Layers without trainable
    variables are left out.
    """
    groups = {}
    seen = set()

    def visit(container, prefix):
        for layer in container.layers:
            path = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model):
                visit(layer, f"{path}/")
                continue
            fresh = [v for v in layer.trainable_variables if id(v) not in seen]
            seen.update(id(v) for v in fresh)
            if fresh:
                groups[path] = fresh

    visit(model, "")
    rest = [v for v in model.trainable_variables if id(v) not in seen]
    if rest:  # The model's own weights (`add_weight` on a subclassed model).
        groups[model.name] = rest
    return groups


def _norm(arrays):
    """L2 norm of several arrays together, in float64 (no overflow for large finite values)."""
    return math.sqrt(sum(float(np.sum(np.square(a, dtype="float64"))) for a in arrays))


def _sync(model):
    """On JAX, copies the training loop's state into the variables (a no-op elsewhere, and
    once a step): what a callback's `self.model` does, for a holder of the bare model."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


_TRACKERS = weakref.WeakSet()  # Every live UpdateRatioTracker, for `before_weight_edit`.


class UpdateRatioTracker:
    """Per-layer ||w_after - w_before|| / ||w_before|| over the optimizer's last real weight update.

    ```
    ratio[layer] = ||w_after - w_before|| / ||w_before||     over that layer's trainable weights
    ```
    Call `before_step` before a training step (from `on_train_batch_begin`) and
    `after_step` after it (from `on_train_batch_end`, or later): `after_step` returns
    the ratios over the latest step in which the optimizer updated the weights
    (`optimizer.iterations` moved: a `steps_per_execution` group counts as one step),
    or None where it made no update. So none of these counts as an update:
    - the extra "batch" of a dataset of unknown length, which only meets the end of
      the data (`before_step` then finishes the previous step's measurement, which
      the next `after_step` returns);
    - a step that only accumulates gradients (`gradient_accumulation_steps`), or
      that a `LossScaleOptimizer` skips (`optimizer.iterations` counts only real
      updates), or that leaves every weight exactly as it was (TensorFlow's count
      moves at the end of a dataset of unknown length);
    - an edit of the weights announced with `before_weight_edit`, as
      `revive_dead_units` announces its own, whatever the order of the callbacks.

    Layers are grouped as `weight_groups` groups them, once the model is built, and
    again whenever its set of trainable weights changes (a layer frozen during `fit`).

    Args:
        model: A compiled Keras model (the one `fit` trains).

    Example:
    >>> tracker = UpdateRatioTracker(model)
    >>> tracker.before_step()
    >>> model.train_on_batch(x, y)
    >>> tracker.after_step()
    {'dense': 0.0012, 'dense_1': 0.0009}
    """

    def __init__(self, model):
        self.model = model
        self._groups = None
        self._trainable_ids = None
        self._before = None  # (optimizer iterations, {id(variable): value}) before a step.
        self._completed = None  # Ratios of the latest real update, until `after_step`.
        _TRACKERS.add(self)

    def groups(self):
        """`{layer_path: [trainable variables]}` (`weight_groups`), kept while the model's
        trainable set stays the same; {} while the model is not built."""
        if not self.model.built:
            return {}
        ids = tuple(id(v) for v in self.model.trainable_variables)
        if ids != self._trainable_ids:
            self._groups = weight_groups(self.model)
            self._trainable_ids = ids
        return self._groups

    def iterations(self):
        """The optimizer's count of real weight updates (`optimizer.iterations`)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "UpdateRatioTracker needs a compiled model (it reads the optimizer's "
                f"iterations). Received: model={self.model.name!r}"
            )
        return int(keras.ops.convert_to_numpy(optimizer.iterations))

    def before_step(self):
        """Copies the trainable weights (call it from `on_train_batch_begin`)."""
        _sync(self.model)
        iterations = self.iterations()
        self._finish(iterations)
        variables = [v for group in self.groups().values() for v in group]
        self._before = (iterations, {id(v): v.numpy() for v in variables})

    def after_step(self):
        """`{layer_path: ratio}` over the latest real update since the previous call,
        or None when the optimizer made none (call it from `on_train_batch_end`)."""
        if self._before is not None:
            _sync(self.model)
            self._finish(self.iterations())
        ratios, self._completed = self._completed, None
        return ratios

    def _finish(self, iterations):
        """Measures the step since `before_step` if the optimizer updated the weights."""
        if self._before is None or iterations == self._before[0]:
            return  # No update yet: the copy still holds the weights before the next one.
        before = self._before[1]
        ratios = {}
        changes = []
        for path, group in self.groups().items():
            if not all(id(v) in before for v in group):
                continue  # Became trainable during the step: no value before it.
            old = [before[id(v)] for v in group]
            change = _norm([v.numpy() - b for v, b in zip(group, old, strict=True)])
            changes.append(change)
            size = _norm(old)
            ratios[path] = change / size if size > 0 else math.inf
        if not any(changes):
            # Not a single weight moved: no update, though the count moved (TensorFlow
            # counts the end of a dataset of unknown length as an iteration). The copy
            # still holds the weights before the next one.
            self._before = (iterations, before)
            return
        self._before = None
        self._completed = ratios

    def _before_edit(self, variables):
        if self._before is None or not any(id(v) in self._before[1] for v in variables):
            return
        _sync(self.model)
        self._finish(self.iterations())
        # No update since `before_step`: the copy would count the edit; drop it.
        self._before = None


def before_weight_edit(variables):
    """Announces an edit of `variables` outside the optimizer, before it is made.

    Every `UpdateRatioTracker` (so every `GradientMonitor`) holding one of them
    measures the optimizer step in progress now, on the weights before the edit, and
    does not count the edit as an update. `revive_dead_units` calls it.

    Args:
        variables: The Keras variables about to be assigned.
    """
    variables = list(variables)
    for tracker in list(_TRACKERS):
        tracker._before_edit(variables)


def _shapes(structure):
    return keras.tree.map_structure(lambda a: tuple(getattr(a, "shape", ())), structure)


def _input_mismatch(model, x):
    """Where the probe's `x` does not fit the model's declared inputs, in words, or None.

    Only what cannot fit is named: an input of the same rank with another size on a
    known non-batch axis (Keras adjusts a rank that differs by one itself). Models
    without declared inputs (subclassed) and dict inputs are left to the backend.
    """
    inputs = getattr(model, "inputs", None) if model.built else None
    if not inputs or isinstance(x, dict):
        return None
    arrays = keras.tree.flatten(x)
    if len(arrays) != len(inputs):
        return None
    for i, (array, tensor) in enumerate(zip(arrays, inputs, strict=True)):
        got, want = tuple(getattr(array, "shape", ())), tuple(tensor.shape)
        if len(got) == len(want) and any(
            w is not None and g != w for g, w in zip(got[1:], want[1:], strict=True)
        ):
            name = "x" if len(inputs) == 1 else f"x[{i}]"
            return f"`probe`'s {name} has shape {got}, but the model takes inputs of shape {want}"
    return None


class GradientMonitor(keras.callbacks.Callback):
    """Gradient norms and update ratios on a fixed probe batch, per layer, during `fit`.

    At the start of training, at the end of each epoch and, with `every`, after every
    `every` batches, the gradient of the model's compiled loss on `probe` with
    respect to every trainable weight is computed from the current weights (the
    weights do not change; inference mode unless `training=True`). The figures go
    into the epoch's `logs` (so `History`, `CSVLogger` and `TensorBoard` get them:
    list this callback before those), and with `every` into the batch logs too:
    ```
    grad_norm              L2 norm of the gradient over every trainable weight
    grad_norm/<layer>      the same over one layer's weights
    update_ratio/<layer>   ||weights after - before|| / ||before|| over the last step
    ```
    Layers are named as `activation_stats` names them ("outer/inner" in nested
    models; a shared layer once, by its name); layers without trainable weights,
    frozen layers included, are left out; the layers are taken once the model is
    built, and again when its trainable set changes (a layer frozen during `fit`).
    Every measurement is also appended to `history`, a list of dicts with `epoch` and
    `step` (`optimizer.iterations`: the optimizer's real updates), so per-batch
    figures are kept.

    The update ratio is over the latest real weight update before the measurement
    (see `UpdateRatioTracker`): a measurement after a step that made none (an
    accumulate-only step of `gradient_accumulation_steps`) has no `update_ratio`,
    neither counting towards `patience` nor resetting it; the epoch's logs carry the
    latest one. `ReviveDeadUnits`'s edits are not counted, in either callback order.

    Cost: one forward and backward pass over the probe per measurement, and a copy
    of the trainable weights before the step that precedes it (before each of the
    last `gradient_accumulation_steps` steps with gradient accumulation; before every
    step when the number of steps an epoch is unknown, as for a dataset of unknown
    length). At the defaults, less than 2% of an epoch of the CIFAR-10 example
    (`benchmarks/RESULTS.md`).

    The gradient follows the model's compile settings: a `tf.function` (with XLA
    under `jit_compile=True`) or `jax.jit` of its own, traced once, eager under
    `run_eagerly` and on torch. Under mixed precision the loss is scaled by the
    `LossScaleOptimizer`'s current scale and the gradient unscaled, as `fit` does;
    under a `tf.distribute` strategy or a JAX `DataParallel` distribution the probe
    is evaluated on the model's (replicated) weights in one piece.

    A `GradientWarning` is issued, once per kind and layer in a `fit`, when
    - the gradient is not finite (NaN or inf in some layer);
    - the global norm grows past `growth_factor` times its value at the end of
      the first epoch (an exploding gradient);
    - a layer's update ratio stays above `max_update_ratio` for `patience`
      consecutive measurements (the learning rate is too high for that layer).
    The defaults come from the dying-ReLU study (`examples/DYING_RELU.md`, "Watching
    the gradients"): Adam on a plain MLP, where ReLU dies at learning rates 1e-2 and
    3e-2 and not at 1e-3 and 3e-3.

    Args:
        probe: `(x, y)` or `(x, y, sample_weight)`: a fixed batch with targets, as
            `fit` takes one (a few hundred held-out examples).
        every: Also measure after every `every` training batches, or None for the
            end of each epoch only. Default: None.
        max_update_ratio: Warn when a layer's update ratio stays above this, or None
            to never warn about it. Default: 0.03 (in the study, Adam's first steps stay
            below it at learning rates 1e-3 and 3e-3 and pass it at 1e-2 and 3e-2, where
            ReLU dies; 0.02 also flags 3e-3, 0.05 misses ReLU at 1e-2).
        patience: Consecutive measurements above `max_update_ratio` before warning.
            Default: 3.
        growth_factor: Warn when the global gradient norm exceeds this many times
            its value at the end of the first epoch (before, BatchNorm's moving
            statistics are still settling and the norm moves with them), or None to
            never warn about it. Default: 10 (in the study every run but one stayed within
            2.1 times it; a diverging run grows geometrically and crosses 10 within
            steps).
        training: Evaluate the loss with the layers in training mode (dropout,
            BatchNorm on batch statistics); the model's state (moving averages,
            random seeds, metrics) is restored after. Default: False.

    Example:
    >>> monitor = keras_relu.diagnostics.GradientMonitor((x_val[:256], y_val[:256]))
    >>> history = model.fit(x, y, epochs=5, callbacks=[monitor])
    >>> history.history["grad_norm"], history.history["update_ratio/dense"]
    """

    def __init__(
        self,
        probe,
        every=None,
        max_update_ratio=0.03,
        patience=3,
        growth_factor=10.0,
        training=False,
    ):
        super().__init__()
        if not isinstance(probe, tuple) or len(probe) not in (2, 3) or probe[1] is None:
            raise ValueError(
                "`probe` must be a batch with targets: `(x, y)` or `(x, y, sample_weight)`. "
                f"Received: probe of type {type(probe).__name__}"
                + (f" with {len(probe)} items" if isinstance(probe, tuple) else "")
            )
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"`every` must be a positive integer or None. Received: {every!r}")
        if max_update_ratio is not None and not max_update_ratio > 0:
            raise ValueError(
                f"`max_update_ratio` must be positive or None. Received: {max_update_ratio!r}"
            )
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"`patience` must be a positive integer. Received: {patience!r}")
        if growth_factor is not None and not growth_factor > 1:
            raise ValueError(
                f"`growth_factor` must be above 1 or None. Received: {growth_factor!r}"
            )
        self.x, self.y, self.sample_weight = keras.utils.unpack_x_y_sample_weight(probe)
        self.every = every
        self.max_update_ratio = max_update_ratio
        self.patience = patience
        self.growth_factor = growth_factor
        self.training = training
        self.history = []
        # Without batch measurements the batch-end hook does nothing: let Keras
        # dispatch batch ends asynchronously, as it does when no callback needs them.
        self.async_safe = every is None
        self._reset()

    def _reset(self):
        self._gradient_function = None
        self._function_variables = None  # The trainable set the function was made for.
        self._tracker = None
        self._first_norm = None
        self._above = {}
        self._warned = set()
        self._tracking = False  # Whether the step about to run is measured by the tracker.
        self._ratios = None  # The latest real update's ratios, until a measurement takes them.
        self._last_ratios = {}  # The latest real update's ratios, for the epoch's logs.
        self._measure_after_step = False
        self._latest = None  # The figures measured after the latest step.

    # Callback hooks.

    def on_train_begin(self, logs=None):
        self._reset()
        self.history = []
        model = self.model
        if not getattr(model, "compiled", False):
            raise ValueError(
                "GradientMonitor needs a compiled model (it evaluates the model's compiled "
                f"loss on `probe`): call `model.compile(...)` first. Received: {model.name!r}"
            )
        self._tracker = UpdateRatioTracker(model)
        self._steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
        # With gradient accumulation only one step in `accumulation` updates the
        # weights: track the last `accumulation` steps before a measurement, so that the
        # tracker sees the latest real update among them.
        optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        accumulation = int(getattr(optimizer, "gradient_accumulation_steps", None) or 1)
        self._window = -(-accumulation // self._steps_per_execution)  # In executions.
        mismatch = _input_mismatch(model, self.x)
        if mismatch:  # Before any tracing: TensorFlow's error would embed its trace.
            raise ValueError(
                f"GradientMonitor: {mismatch}. Received: probe with x, y shapes "
                f"{_shapes((self.x, self.y))}"
            )
        try:
            self._measure(epoch=0, epoch_end=False)
        except Exception as error:  # Whatever the backend raises: name the argument.
            raise ValueError(
                f"GradientMonitor: the model's loss cannot be evaluated on `probe` "
                f"(x, y shapes {_shapes((self.x, self.y))}): {type(error).__name__}: {error}"
            ) from error

    def on_train_batch_begin(self, batch, logs=None):
        self._measure_after_step = self._measures_after(batch)
        step = self._steps_per_execution
        self._tracking = any(
            self._ends_epoch(start) or self._measures_after(start)
            for start in range(batch, batch + self._window * step, step)
        )
        if self._tracking:
            # Accessing the weights syncs JAX's state: only where a figure needs it.
            self._tracker.before_step()
        self._latest = None

    def on_train_batch_end(self, batch, logs=None):
        # Without `every` this hook does nothing (Keras may run it on another thread):
        # the epoch's end collects the tracked step.
        if not self._measure_after_step:
            return
        self._collect_ratios()
        self._latest = self._measure(epoch=self._epoch, epoch_end=self._ends_epoch(batch))
        if logs is not None:
            logs.update(self._figures(self._latest))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        figures = self._latest  # Measured after the epoch's last batch already.
        if figures is None:
            self._collect_ratios()
            figures = self._measure(epoch=epoch, epoch_end=True)
        if logs is not None:
            logs.update(self._figures(figures))
            # Each epoch's logs have every layer's ratio, over the latest real update
            # (where the epoch's last measurement found none: gradient accumulation).
            for path, ratio in self._last_ratios.items():
                logs.setdefault(f"update_ratio/{path}", ratio)

    # Measurement.

    def _collect_ratios(self):
        ratios = self._tracker.after_step()
        if ratios is not None:
            self._ratios = self._last_ratios = ratios

    def _ends_epoch(self, batch):
        steps = self.params.get("steps") if self.params else None
        return steps is None or batch + self._steps_per_execution >= steps

    def _measures_after(self, batch):
        if self.every is None:
            return False
        last = batch + self._steps_per_execution
        return last // self.every > batch // self.every

    def _loss_scale(self):
        optimizer = self.model.optimizer
        if optimizer is None or not hasattr(optimizer, "scale_loss"):
            return 1.0
        return float(keras.ops.convert_to_numpy(optimizer.scale_loss(1.0)))

    def _gradients(self):
        """The probe's gradients (numpy arrays, one per trainable variable) and those
        variables, the model's state left as it was."""
        model = self.model
        variables = model.trainable_variables
        if self._function_variables != [id(v) for v in variables]:
            # First use, or a layer frozen or unfrozen since (a traced function would
            # still differentiate the old set).
            self._gradient_function = _gradient_function(model, self.training)
            self._function_variables = [id(v) for v in variables]
        state = list(model.metrics_variables)
        if self.training:
            state += model.non_trainable_variables
        saved = [v.numpy() for v in state]
        scale = self._loss_scale()
        try:
            loss, gradients = self._call_gradient_function(scale)
            gradients = [keras.ops.convert_to_numpy(g) for g in gradients]
            if scale != 1.0 and not all(np.all(np.isfinite(g)) for g in gradients):
                # The scaled loss overflowed (fit would skip this step): measure unscaled.
                loss, gradients = self._call_gradient_function(1.0)
                gradients = [keras.ops.convert_to_numpy(g) for g in gradients]
        finally:
            for variable, value in zip(state, saved, strict=True):
                variable.assign(value)
        return float(keras.ops.convert_to_numpy(loss)), gradients, model.trainable_variables

    def _call_gradient_function(self, scale):
        scale = np.asarray(scale, dtype="float32")  # A tensor argument: one trace.
        return self._gradient_function(self.x, self.y, self.sample_weight, scale)

    def _measure(self, epoch, epoch_end):
        loss, gradients, variables = self._gradients()
        index = {id(v): i for i, v in enumerate(variables)}
        groups = self._tracker.groups()
        figures = {"grad_norm": _norm(gradients), "loss": loss}
        finite = {}
        for path, group in groups.items():
            layer_gradients = [gradients[index[id(v)]] for v in group]
            figures[f"grad_norm/{path}"] = _norm(layer_gradients)
            finite[path] = all(np.all(np.isfinite(g)) for g in layer_gradients)
        ratios, self._ratios = self._ratios, None  # Each update is counted once.
        for path, ratio in (ratios or {}).items():
            figures[f"update_ratio/{path}"] = ratio
        step = self._tracker.iterations()
        self.history.append({"epoch": epoch, "step": step, **figures})
        self._check(figures, epoch, step, finite, epoch_end)
        return figures

    def _figures(self, figures):
        """What goes into the logs: everything but the probe's loss (fit logs its own)."""
        return {k: v for k, v in figures.items() if k != "loss"}

    def _check(self, figures, epoch, step, finite, epoch_end):
        where = f"Epoch {epoch + 1}, step {step}"
        broken = [path for path, ok in finite.items() if not ok]
        if broken:
            self._warn(
                "finite",
                f"{where}: the gradient is not finite in {', '.join(broken)}. Lower the "
                "learning rate, clip the gradient (`clipnorm=`) or check the data and loss.",
            )
        norm = figures["grad_norm"]
        if self._first_norm is None and epoch_end and math.isfinite(norm):
            # The baseline is the measurement at the end of the first epoch: until then
            # BatchNorm's moving statistics, which the inference-mode probe uses, are still
            # settling from their initial 0 and 1, and the gradient norm moves with them
            # (the CIFAR-10 CNN's, with every=10: 0.03 at steps 0 and 10, 0.86 at 30, 1.9
            # at 45, steady after), which is not an explosion.
            self._first_norm = norm
        if self.growth_factor is not None and self._first_norm and math.isfinite(norm):
            growth = norm / self._first_norm
            if growth > self.growth_factor:
                self._warn(
                    "growth",
                    f"{where}: the gradient norm {norm:.3g} is {growth:.0f}x its value at the end "
                    f"of the first epoch, {self._first_norm:.3g} (above growth_factor="
                    f"{self.growth_factor:g}): "
                    "exploding gradients. Lower or schedule the learning rate, or clip it.",
                )
        if self.max_update_ratio is None:
            return
        for path in self._tracker.groups():
            ratio = figures.get(f"update_ratio/{path}")
            if ratio is None:
                continue
            count = self._above.get(path, 0) + 1 if ratio > self.max_update_ratio else 0
            self._above[path] = count
            if count >= self.patience:
                self._warn(
                    f"update:{path}",
                    f"{where}: the update ratio of {path} has been above "
                    f"max_update_ratio={self.max_update_ratio:g} for {count} measurements "
                    f"(now {ratio:.3g}): the learning rate is too high for it. Lower or "
                    "schedule the rate, clip the gradient, or use a variant that keeps the "
                    "gradient on the negative side (Leaky ReLU, PReLU).",
                )

    def _warn(self, kind, message):
        if kind in self._warned:
            return
        self._warned.add(kind)
        warnings.warn(message, GradientWarning, stacklevel=3)


__all__ = [
    "GradientMonitor",
    "GradientWarning",
    "UpdateRatioTracker",
    "before_weight_edit",
    "jax_state",
    "loss_gradient_function",
    "loss_gradients",
    "weight_groups",
]
