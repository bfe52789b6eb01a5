"""A guard on the learning rate: lower it while a step moves the weights too far.

`ReduceLROnHighUpdateRatio` measures, during `fit`, how far one optimizer step moves
each layer's weights relative to their size (`UpdateRatioTracker`, as `GradientMonitor`
reports it):
```
update_ratio = max over layers of ||w_after - w_before|| / ||w_before||
```
and lowers the optimizer's learning rate when that stays above `max_update_ratio`.
A step's update is proportional to the learning rate (Adam's, SGD's, and the other
optimizers' Keras ships), so a lowering multiplies the rate by `factor` as many times
as it takes to bring the measured ratio to the bound:
```
new_rate = max(rate * factor**k, min_lr)
k = the least integer >= 1 with ratio * factor**k <= max_update_ratio
```
A constant rate is assigned to the optimizer's learning-rate variable (as Keras's
`ReduceLROnPlateau` does); a `LearningRateSchedule` is scaled, not replaced: it is
wrapped once in a `ScaledSchedule`, whose `scale` the guard lowers, so the schedule
keeps its shape and the scale is saved with the optimizer.
"""

import math

import keras
from keras import ops

from keras_relu import _checks
from keras_relu import _keras_integration
from keras_relu.diagnostics.gradients import UpdateRatioTracker


@keras.saving.register_keras_serializable(package="keras_relu")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule multiplied by a scale that can change during training.

    ```
    rate(step) = scale * schedule(step)
    ```
    `scale` is a `keras.Variable` (float32, not trainable), read by the optimizer at
    every step: assign it to rescale the schedule while keeping its shape (warm-up,
    decay). It is saved in the config, so `optimizer.get_config()`, `model.save` and
    `keras.saving.load_model` keep it (`import keras_relu` before loading).

    On JAX, a compiled (`jit_compile`) train step holds the scale it was traced with,
    as a constant: after assigning `scale` during `fit`, call
    `model.make_train_function(force=True)` so that the next step is traced again
    (`ReduceLROnHighUpdateRatio` does). TensorFlow and PyTorch read the variable at
    every step.

    Args:
        schedule: The `keras.optimizers.schedules.LearningRateSchedule` to scale (or
            its serialized config).
        scale: The initial scale, a finite number > 0. Default: 1.0.

    Example:
    >>> decay = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=1000)
    >>> schedule = keras_relu.diagnostics.ScaledSchedule(decay)
    >>> optimizer = keras.optimizers.Adam(schedule)
    >>> schedule.scale.assign(0.5)  # Half of the cosine curve from here on.
    """

    def __init__(self, schedule, scale=1.0):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "`schedule` must be a keras.optimizers.schedules.LearningRateSchedule. "
                f"Received: schedule={schedule!r}"
            )
        scale = _checks.check_finite("scale", scale)
        if scale <= 0:
            raise ValueError(f"`scale` must be > 0. Received: scale={scale!r}")
        self.schedule = schedule
        # One value for every replica: only the first replica's assignment counts.
        self.scale = keras.Variable(
            scale,
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="learning_rate_scale",
        )

    def __call__(self, step):
        rate = ops.convert_to_tensor(self.schedule(step))
        return ops.multiply(rate, ops.cast(self.scale, rate.dtype))

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "scale": float(ops.convert_to_numpy(self.scale)),
        }


class ReduceLROnHighUpdateRatio(keras.callbacks.Callback):
    """Lowers the learning rate while an optimizer step moves some layer's weights too far.

    After a training step it measures (see `when` below), the callback takes every
    layer's update ratio `||w_after - w_before|| / ||w_before||` over that one step
    (`UpdateRatioTracker`; layers whose weights were all 0, or became non-finite, are
    left out), and its largest value. When that is above `max_update_ratio` for
    `patience` measurements in a row, outside a cooldown, the learning rate is
    multiplied by `factor` as many times as it takes to bring the measured ratio to
    `max_update_ratio` (a step's update is proportional to the rate), and not below
    `min_lr`:
    ```
    new_rate = max(rate * factor**k, min_lr)
    k = the least integer >= 1 with ratio * factor**k <= max_update_ratio
    ```
    A constant rate is assigned to the optimizer's learning-rate variable (as
    `keras.callbacks.ReduceLROnPlateau` does). A `LearningRateSchedule` keeps its
    shape: at the first lowering it is wrapped in a `ScaledSchedule` (its `scale`
    saved with the optimizer), whose scale is lowered then and after; `min_lr` bounds
    the scaled rate at the step it is lowered, and the schedule's own decay goes on
    below it. An optimizer given a `ScaledSchedule` (or loaded with one) has that
    scale lowered. On JAX under `jit_compile`, the train step is traced again after
    each change of a schedule's scale (a compiled JAX step holds the scale as a
    constant); a constant rate needs no new trace on any backend.

    When: after each of the first `start_steps` training batches of a new optimizer
    (the optimizer's `iterations` below `start_steps`): Adam's update ratio is at its
    largest in the first steps, and that is where a high rate kills ReLUs (in the
    dying-ReLU study, within 10 to 30 steps); then after every `every`-th batch. A
    measurement copies the trainable weights before the step and takes the norms
    after it (about one training step of the study's MLP); where the optimizer makes
    no update in a batch (gradient accumulation, a step a `LossScaleOptimizer` skips,
    the end of a dataset of unknown length), the measurement waits for the next one.

    What it did is kept: `history` holds one dict per measurement (`epoch`, `step`:
    the optimizer's iterations after it, `update_ratio`, `layer`: the layer it is
    from, `learning_rate`: the rate in force after it, `lr_scale`: the product of
    this `fit`'s lowerings, `lowered`: whether it lowered the rate), the epoch logs
    get `learning_rate` and `lr_scale` (so `History` and `CSVLogger` do: list this
    callback before them), and with `verbose=1` each lowering is printed.

    The defaults come from the dying-ReLU study's MLP (3072-128-128-128-10 on CIFAR-10,
    Adam, `docs/dying-relu/cures.md`): Adam's first step moves every weight by the
    learning rate, so its ratio is the rate over the layer's root-mean-square weight:
    0.039 at 1e-3 for the first layer (He-normal, fan-in 3072), which trains well and
    is left alone by `max_update_ratio=0.05`; 0.12 at 3e-3, 0.39 at 1e-2 and 1.2 at
    3e-2, which are lowered after the first step (`patience=1`) to about 1e-3. A model
    with wider layers (smaller initial weights) has larger ratios at the same rate.

    Args:
        max_update_ratio: The bound on the largest layer's update ratio, > 0.
            Default: 0.05.
        factor: What the rate is multiplied by, in (0, 1), as many times as it takes.
            Default: 0.5.
        patience: Consecutive measurements above `max_update_ratio` before lowering,
            >= 1. Default: 1.
        cooldown: Measurements after a lowering during which the rate is not lowered
            again (and not counted towards `patience`), >= 0. Default: 0.
        min_lr: The lowest rate a lowering gives, >= 0. Default: 0.0.
        every: Measure after every `every`-th training batch, >= 1. Default: 100.
        start_steps: Also measure after each of the first `start_steps` batches of a
            new optimizer, >= 0. Default: 10.
        verbose: 0 (quiet) or 1 (print each lowering). Default: 0.

    Example:
    >>> guard = keras_relu.diagnostics.ReduceLROnHighUpdateRatio(verbose=1)
    >>> model.compile(keras.optimizers.Adam(3e-2), loss=..., metrics=["accuracy"])
    >>> history = model.fit(x, y, epochs=4, callbacks=[guard])
    >>> history.history["learning_rate"], guard.history[0]
    """

    def __init__(
        self,
        max_update_ratio=0.05,
        factor=0.5,
        patience=1,
        cooldown=0,
        min_lr=0.0,
        every=100,
        start_steps=10,
        verbose=0,
    ):
        super().__init__()
        max_update_ratio = _checks.check_finite("max_update_ratio", max_update_ratio)
        if max_update_ratio <= 0:
            raise ValueError(
                f"`max_update_ratio` must be > 0. Received: max_update_ratio={max_update_ratio!r}"
            )
        factor = _checks.check_finite("factor", factor)
        if not 0 < factor < 1:
            raise ValueError(f"`factor` must be in (0, 1). Received: factor={factor!r}")
        for name, value, lowest in (
            ("patience", patience, 1),
            ("cooldown", cooldown, 0),
            ("every", every, 1),
            ("start_steps", start_steps, 0),
        ):
            if _checks.check_int(name, value) < lowest:
                raise ValueError(f"`{name}` must be >= {lowest}. Received: {name}={value!r}")
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={verbose!r}")
        self.max_update_ratio = max_update_ratio
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.min_lr = _checks.check_non_negative("min_lr", min_lr)
        self.every = every
        self.start_steps = start_steps
        self.verbose = verbose
        self.history = []
        self._reset()

    def _reset(self):
        self._tracker = None
        self._wait = 0
        self._cooldown_counter = 0
        self._batches = 0  # Training batches begun in this fit.
        self._window = 0  # Batches of this fit measured one by one (`start_steps`).
        self._pending = False  # A measurement started, waiting for an optimizer update.
        self._lr_scale = 1.0
        self._epoch = 0

    # Callback hooks.

    def on_train_begin(self, logs=None):
        self._reset()
        self.history = []
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError(
                "ReduceLROnHighUpdateRatio needs a compiled model (it lowers the "
                f"optimizer's learning rate): call `model.compile(...)` first. "
                f"Received: {model.name!r}"
            )
        self._learning_rate_kind()  # Fails now for a rate it cannot lower.
        self._tracker = UpdateRatioTracker(model)
        self._steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
        self._window = max(0, self.start_steps - self._tracker.iterations())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        first = self._batches + 1
        self._batches += self._steps_per_execution
        last = self._batches
        due = first <= self._window or last // self.every > (first - 1) // self.every
        if due or self._pending:
            # Also while pending: the copy is taken again (the weights have not changed
            # through an update since; an edit announced to the tracker may have).
            self._tracker.before_step()
            self._pending = True

    def on_train_batch_end(self, batch, logs=None):
        if not self._pending:
            return
        ratios = self._tracker.after_step()
        if ratios is None:
            return  # No optimizer update in this batch: measure the next one.
        self._pending = False
        self._act(ratios)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._current_rate()
            logs["lr_scale"] = self._lr_scale

    def on_train_end(self, logs=None):
        self._pending = False
        self._tracker = None

    # The rate.

    def _optimizer(self):
        optimizer = self.model.optimizer
        return getattr(optimizer, "inner_optimizer", optimizer)

    def _learning_rate_kind(self):
        """'variable' or 'schedule', or raises for a rate this callback cannot lower."""
        setting = _keras_integration.learning_rate_setting(self._optimizer())
        if isinstance(setting, keras.Variable):
            return "variable"
        if isinstance(setting, keras.optimizers.schedules.LearningRateSchedule):
            return "schedule"
        raise ValueError(
            "ReduceLROnHighUpdateRatio lowers a constant learning rate (a float) or scales "
            "a keras.optimizers.schedules.LearningRateSchedule. Received: an optimizer "
            f"whose learning_rate is {setting!r}"
        )

    def _current_rate(self):
        return float(ops.convert_to_numpy(self._optimizer().learning_rate))

    def _act(self, ratios):
        finite = {path: r for path, r in ratios.items() if math.isfinite(r)}
        if not finite:
            return
        layer = max(finite, key=finite.get)
        ratio = finite[layer]
        rate = self._current_rate()
        lowered = False
        if self._cooldown_counter > 0:
            self._cooldown_counter -= 1
            self._wait = 0
        elif ratio > self.max_update_ratio:
            self._wait += 1
            if self._wait >= self.patience and rate > self.min_lr:
                # The least k >= 1 with ratio * factor**k <= max_update_ratio (the
                # tolerance keeps an exact power of factor from taking one more).
                k = max(1, math.ceil(math.log(self.max_update_ratio / ratio, self.factor) - 1e-9))
                new_rate = max(rate * self.factor**k, self.min_lr)
                self._set_rate(rate, new_rate)
                self._lr_scale *= new_rate / rate
                self._wait = 0
                self._cooldown_counter = self.cooldown
                lowered = True
                if self.verbose:
                    print(
                        f"\nEpoch {self._epoch + 1}, step {self._tracker.iterations()}: "
                        f"ReduceLROnHighUpdateRatio: update ratio {ratio:.3g} of {layer} is above "
                        f"max_update_ratio={self.max_update_ratio:g}: learning rate "
                        f"{rate:.3g} -> {new_rate:.3g}."
                    )
                rate = new_rate
        else:
            self._wait = 0
        self.history.append(
            {
                "epoch": self._epoch,
                "step": self._tracker.iterations(),
                "update_ratio": ratio,
                "layer": layer,
                "learning_rate": rate,
                "lr_scale": self._lr_scale,
                "lowered": lowered,
            }
        )

    def _set_rate(self, rate, new_rate):
        optimizer = self._optimizer()
        if self._learning_rate_kind() == "variable":
            # The optimizer's own variable: every backend's train step reads it (on JAX
            # from the state it gathers again once a callback has synced it).
            optimizer.learning_rate = new_rate
            return
        schedule = _keras_integration.learning_rate_setting(optimizer)
        wrapped = not isinstance(schedule, ScaledSchedule)
        if wrapped:
            schedule = ScaledSchedule(schedule)
            optimizer.learning_rate = schedule
            if self.verbose:
                print(
                    f"\nReduceLROnHighUpdateRatio: the optimizer's "
                    f"{type(schedule.schedule).__name__} is now scaled by a ScaledSchedule."
                )
        scale = float(ops.convert_to_numpy(schedule.scale))
        schedule.scale.assign(scale * new_rate / rate)
        model = self.model
        if wrapped or (
            keras.config.backend() == "jax" and model.jit_compile and not model.run_eagerly
        ):
            # A step traced before holds the old schedule (every backend) or the old
            # scale as a constant (a jitted JAX step): trace it again.
            model.make_train_function(force=True)


__all__ = ["ReduceLROnHighUpdateRatio", "ScaledSchedule"]
