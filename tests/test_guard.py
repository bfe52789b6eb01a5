"""ReduceLROnHighUpdateRatio and ScaledSchedule: the rate each step is taken at (a model
whose every step is exactly the learning rate), with a constant rate and a schedule, jit
on and off; a healthy and an exploding ReLU MLP; saving; patience, cooldown and min_lr;
distribution; errors. Run once per KERAS_BACKEND."""

import math

import keras
import numpy as np
import pytest
from two_devices import TWO_REPLICAS
from two_devices import run_with_two_devices

from keras_relu import _keras_integration
from keras_relu import diagnostics
from keras_relu.diagnostics import ReduceLROnHighUpdateRatio
from keras_relu.diagnostics import ScaledSchedule
from keras_relu.diagnostics import guard as guard_module

BACKEND = keras.config.backend()
STEPS = 8  # Batches of the unit-step model's epoch.
# The unit-step model's first ratio is its rate: 0.18 * 0.5**2 = 0.045 <= 0.05 (not a power
# of 0.5 times the bound, where float32 rounding would decide the number of halvings).
RATE = 0.18


def _unit_step_model(learning_rate, **compile_kwargs):
    """One Dense kernel of ones, inputs of ones, mean absolute error to a target far above:
    every entry's gradient is exactly -1, so an SGD step adds the learning rate to every
    entry, and the update ratio of a step is rate / kernel entry."""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    model.compile(keras.optimizers.SGD(learning_rate), loss="mae", **compile_kwargs)
    return model


def _unit_step_data():
    return np.ones((2 * STEPS, 4), "float32"), np.full((2 * STEPS, 1), 1e6, "float32")


class _Steps(keras.callbacks.Callback):
    """The step each batch took (the kernel's first entry before and after)."""

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        self._before = float(self.model.get_weights()[0][0, 0])

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(float(self.model.get_weights()[0][0, 0]) - self._before)


def _fit(model, guard, epochs=1):
    steps = _Steps()
    x, y = _unit_step_data()
    history = model.fit(
        x, y, batch_size=2, epochs=epochs, shuffle=False, verbose=0, callbacks=[guard, steps]
    )
    return steps.steps, history


def _decay():
    return keras.optimizers.schedules.ExponentialDecay(RATE, decay_steps=4, decay_rate=0.5)


def _decay_rate(step):
    return RATE * 0.5 ** (step / 4)


COMPILE = {
    "jit_compile": {"jit_compile": True},
    "no_jit_compile": {"jit_compile": False},
    "run_eagerly": {"run_eagerly": True},
}


@pytest.mark.parametrize("setting", list(COMPILE))
def test_a_constant_rate_is_lowered_and_every_later_step_takes_it(setting):
    model = _unit_step_model(RATE, **COMPILE[setting])
    guard = ReduceLROnHighUpdateRatio()
    steps, history = _fit(model, guard)
    # Step 1's ratio is RATE / 1: two halvings, once; later ratios are below the bound.
    np.testing.assert_allclose(steps, [RATE] + [RATE / 4] * (STEPS - 1), rtol=1e-5, atol=3e-7)
    assert [entry["lowered"] for entry in guard.history] == [True] + [False] * (STEPS - 1)
    assert guard.history[0]["update_ratio"] == pytest.approx(RATE, rel=1e-5)
    assert guard.history[0]["step"] == 1
    assert guard.history[0]["layer"] == model.layers[0].name
    assert history.history["learning_rate"] == [pytest.approx(RATE / 4)]
    assert history.history["lr_scale"] == [pytest.approx(0.25)]
    assert isinstance(_keras_integration.learning_rate_setting(model.optimizer), keras.Variable)


@pytest.mark.parametrize("setting", list(COMPILE))
def test_a_schedule_is_scaled_keeping_its_shape(setting):
    model = _unit_step_model(_decay(), **COMPILE[setting])
    guard = ReduceLROnHighUpdateRatio()
    steps, history = _fit(model, guard, epochs=2)
    expected = [_decay_rate(0)] + [0.25 * _decay_rate(t) for t in range(1, 2 * STEPS)]
    np.testing.assert_allclose(steps, expected, rtol=1e-5, atol=3e-7)
    schedule = _keras_integration.learning_rate_setting(model.optimizer)
    assert isinstance(schedule, ScaledSchedule)
    assert isinstance(schedule.schedule, keras.optimizers.schedules.ExponentialDecay)
    assert float(keras.ops.convert_to_numpy(schedule.scale)) == pytest.approx(0.25)
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [0.25 * _decay_rate(STEPS), 0.25 * _decay_rate(2 * STEPS)],
        rtol=1e-5,
    )
    assert sum(entry["lowered"] for entry in guard.history) == 1


def test_a_scaled_schedule_given_is_lowered_further():
    model = _unit_step_model(ScaledSchedule(_decay(), scale=0.5))
    steps, _ = _fit(model, ReduceLROnHighUpdateRatio())
    # Step 1 at half the rate: one halving, the scale 0.5 -> 0.25.
    expected = [0.5 * _decay_rate(0)] + [0.25 * _decay_rate(t) for t in range(1, STEPS)]
    np.testing.assert_allclose(steps, expected, rtol=1e-5, atol=3e-7)


def test_under_mixed_precision_the_loss_scale_optimizer_s_schedule_is_scaled():
    keras.config.set_dtype_policy("mixed_float16")  # The autouse fixture restores float32.
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    model.compile(keras.optimizers.SGD(_decay()), loss="mae")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    steps = _Steps()
    x = np.ones((2 * STEPS, 4), "float32")
    y = np.full((2 * STEPS, 1), 1e4, "float32")  # Within float16's range.
    guard = ReduceLROnHighUpdateRatio()
    model.fit(x, y, batch_size=2, shuffle=False, verbose=0, callbacks=[guard, steps])
    expected = [_decay_rate(0)] + [0.25 * _decay_rate(t) for t in range(1, STEPS)]
    np.testing.assert_allclose(steps.steps, expected, rtol=1e-5, atol=3e-7)
    schedule = _keras_integration.learning_rate_setting(model.optimizer)
    assert isinstance(schedule, ScaledSchedule)


def test_a_healthy_rate_is_left_alone_and_a_schedule_not_wrapped():
    model = _unit_step_model(keras.optimizers.schedules.ExponentialDecay(0.04, 4, 0.5))
    guard = ReduceLROnHighUpdateRatio(every=1)
    steps, history = _fit(model, guard)
    expected = [0.04 * 0.5 ** (t / 4) for t in range(STEPS)]
    np.testing.assert_allclose(steps, expected, rtol=1e-5, atol=3e-7)
    assert len(guard.history) == STEPS and not any(e["lowered"] for e in guard.history)
    assert history.history["lr_scale"] == [1.0]
    setting = _keras_integration.learning_rate_setting(model.optimizer)
    assert isinstance(setting, keras.optimizers.schedules.ExponentialDecay)


def _relu_mlp(learning_rate):
    init = keras.initializers.HeNormal
    inputs = keras.Input((32,))
    hidden = keras.layers.Dense(64, "relu", kernel_initializer=init(seed=1), name="dense1")(inputs)
    hidden = keras.layers.Dense(64, "relu", kernel_initializer=init(seed=2), name="dense2")(hidden)
    outputs = keras.layers.Dense(2, kernel_initializer=init(seed=3), name="logits")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _classes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 32)).astype("float32")
    y = (x[:, :8] @ rng.standard_normal(8) > 0).astype("int32")
    return x, y


def _train_mlp(learning_rate, guard=None):
    model = _relu_mlp(learning_rate)
    x, y = _classes()
    history = model.fit(
        x, y, batch_size=32, epochs=5, shuffle=False, verbose=0, callbacks=[guard] if guard else []
    )
    dead = diagnostics.summarize(diagnostics.activation_stats(model, x))["dead_fraction"]
    return history.history["loss"][-1], dead


def test_adam_at_1e_3_never_lowers_the_rate():
    guard = ReduceLROnHighUpdateRatio(every=1)
    _train_mlp(1e-3, guard)
    assert len(guard.history) == 80  # Every step of 5 epochs of 16 batches.
    assert not any(entry["lowered"] for entry in guard.history)
    assert max(entry["update_ratio"] for entry in guard.history) < 0.05
    assert all(entry["learning_rate"] == pytest.approx(1e-3) for entry in guard.history)


def test_adam_at_a_rate_that_kills_units_is_lowered_at_once_and_trains_better():
    guard = ReduceLROnHighUpdateRatio(every=1)
    guarded_loss, guarded_dead = _train_mlp(0.1, guard)
    plain_loss, plain_dead = _train_mlp(0.1)
    lowered = [entry for entry in guard.history if entry["lowered"]]
    # Adam's first step moves each weight by the rate: ratio 0.1 / rms(weights), about 0.6.
    assert len(lowered) == 1 and lowered[0]["step"] == 1 and lowered[0]["update_ratio"] > 0.4
    assert guard.history[-1]["learning_rate"] < 0.1 / 8
    assert max(entry["update_ratio"] for entry in guard.history[1:]) < 0.05
    # Plain: 37-48% of the units dead (by backend: their initial weights differ); guarded
    # 3-20%.
    assert guarded_dead < 0.6 * plain_dead, (guarded_dead, plain_dead)
    assert guarded_loss < plain_loss, (guarded_loss, plain_loss)


def test_saved_and_loaded_with_the_model_s_optimizer_the_scale_is_kept(tmp_path):
    model = _unit_step_model(_decay())
    _fit(model, ReduceLROnHighUpdateRatio())
    config = model.optimizer.get_config()
    assert config["learning_rate"]["config"]["scale"] == pytest.approx(0.25)
    rebuilt = keras.optimizers.SGD.from_config(config)
    schedule = _keras_integration.learning_rate_setting(rebuilt)
    assert isinstance(schedule, ScaledSchedule)
    assert float(keras.ops.convert_to_numpy(schedule.scale)) == pytest.approx(0.25)
    assert schedule.schedule.get_config() == _decay().get_config()

    path = tmp_path / "guarded.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    schedule = _keras_integration.learning_rate_setting(loaded.optimizer)
    assert isinstance(schedule, ScaledSchedule)
    assert float(keras.ops.convert_to_numpy(schedule.scale)) == pytest.approx(0.25)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == STEPS
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
    # Training goes on at the scaled schedule, from the restored step count.
    steps = _Steps()
    x, y = _unit_step_data()
    loaded.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0, callbacks=[steps])
    np.testing.assert_allclose(steps.steps, [0.25 * _decay_rate(STEPS)], rtol=1e-5)


def test_scaled_schedule_config_round_trip_and_serialization():
    schedule = ScaledSchedule(_decay(), scale=0.125)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, ScaledSchedule)
    assert restored.get_config() == schedule.get_config()
    for step in (0, 3, 10):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(restored(step)), 0.125 * _decay_rate(step), rtol=1e-6
        )
    schedule.scale.assign(0.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(schedule(4)), RATE / 4, rtol=1e-6)


def test_gradient_accumulation_counts_real_updates():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    model.compile(keras.optimizers.SGD(RATE, gradient_accumulation_steps=2), loss="mae")
    guard = ReduceLROnHighUpdateRatio(every=1)
    steps, _ = _fit(model, guard)
    np.testing.assert_allclose(steps, [0, RATE] + [0, RATE / 4] * 3, atol=1e-6)
    assert [entry["step"] for entry in guard.history] == [1, 2, 3, 4]
    assert [entry["lowered"] for entry in guard.history] == [True, False, False, False]


@pytest.mark.skipif(BACKEND == "torch", reason="Keras's torch trainer takes steps_per_execution=1.")
def test_steps_per_execution_measures_each_group_of_steps():
    model = _unit_step_model(RATE, steps_per_execution=2)
    guard = ReduceLROnHighUpdateRatio()
    steps, _ = _fit(model, guard)
    # A group of two steps: ratio 2 * RATE, three halvings; steps taken two at a time.
    assert [entry["step"] for entry in guard.history] == [2, 4, 6, 8]
    assert guard.history[0]["update_ratio"] == pytest.approx(2 * RATE, rel=1e-5)
    np.testing.assert_allclose(
        steps, [2 * RATE] + [2 * RATE / 8] * (STEPS // 2 - 1), rtol=1e-5, atol=3e-7
    )


# Keras's trainers warn when a dataset of unknown length ends.
@pytest.mark.filterwarnings("ignore:Your input ran out of data:UserWarning")
def test_data_of_unknown_length_measures_every_step_once():
    tf = pytest.importorskip("tensorflow")
    x, y = _unit_step_data()
    # A filter hides the number of batches: each epoch ends on a batch that never runs.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(2).filter(lambda x, y: True)
    model = _unit_step_model(RATE)
    guard = ReduceLROnHighUpdateRatio(every=1)
    steps = _Steps()
    model.fit(data, epochs=2, verbose=0, callbacks=[guard, steps])
    # One measurement per real step. (TensorFlow counts the end of the data as an
    # optimizer iteration: its second epoch's steps are 10 to 17.)
    shift = 1 if BACKEND == "tensorflow" else 0
    expected = [*range(1, STEPS + 1), *range(STEPS + 1 + shift, 2 * STEPS + 1 + shift)]
    assert [entry["step"] for entry in guard.history] == expected
    assert [entry["lowered"] for entry in guard.history] == [True] + [False] * (2 * STEPS - 1)
    np.testing.assert_allclose(
        [entry["update_ratio"] for entry in guard.history[1:]],
        [(RATE / 4) / (1 + RATE + (t - 1) * RATE / 4) for t in range(1, 2 * STEPS)],
        rtol=1e-5,
    )


def test_measured_after_the_first_start_steps_then_every_every():
    model = _unit_step_model(0.01)
    guard = ReduceLROnHighUpdateRatio(every=4, start_steps=3)
    _fit(model, guard, epochs=2)
    assert [entry["step"] for entry in guard.history] == [1, 2, 3, 4, 8, 12, 16]
    guard = ReduceLROnHighUpdateRatio(every=4, start_steps=3)
    _fit(model, guard)  # Its optimizer is past start_steps: every 4 only.
    assert [entry["step"] for entry in guard.history] == [20, 24]


def test_verbose_prints_each_lowering(capsys):
    model = _unit_step_model(_decay())
    _fit(model, ReduceLROnHighUpdateRatio(verbose=1))
    out = capsys.readouterr().out
    assert "ExponentialDecay is now scaled by a ScaledSchedule" in out
    # The rate of the next step (the schedule's at step 1), before and after.
    assert (
        f"Epoch 1, step 1: ReduceLROnHighUpdateRatio: update ratio 0.18 of {model.layers[0].name} "
        f"is above max_update_ratio=0.05: learning rate {_decay_rate(1):.3g} -> "
        f"{_decay_rate(1) / 4:.3g}." in out
    )
    _fit(_unit_step_model(0.01), ReduceLROnHighUpdateRatio(verbose=1))
    assert capsys.readouterr().out == ""


class _ScriptedTracker:
    """Stands for UpdateRatioTracker: after each step, the next of `RATIOS` (None: no
    update in that batch)."""

    RATIOS = []

    def __init__(self, model):
        self.ratios = iter(self.RATIOS)
        self.count = 0

    def iterations(self):
        return self.count

    def before_step(self):
        pass

    def after_step(self):
        ratio = next(self.ratios)
        if ratio is None:
            return None
        self.count += 1
        return {"dense": ratio}


def _scripted(monkeypatch, ratios, **kwargs):
    """The rate after each measurement, for a constant rate 1.0 and scripted ratios."""
    monkeypatch.setattr(_ScriptedTracker, "RATIOS", ratios)
    monkeypatch.setattr(guard_module, "UpdateRatioTracker", _ScriptedTracker)
    model = _unit_step_model(1.0)
    guard = ReduceLROnHighUpdateRatio(every=1, **kwargs)
    guard.set_model(model)
    guard.on_train_begin()
    for batch in range(len(ratios)):
        guard.on_train_batch_begin(batch)
        guard.on_train_batch_end(batch)
    return [round(entry["learning_rate"], 6) for entry in guard.history]


def test_patience_counts_consecutive_measurements_above(monkeypatch):
    rates = _scripted(monkeypatch, [0.1, 0.01, 0.1, 0.1, 0.1, 0.1], patience=2)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]


def test_cooldown_skips_measurements_after_a_lowering(monkeypatch):
    rates = _scripted(monkeypatch, [0.1] * 6, cooldown=2)
    assert rates == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_min_lr_bounds_a_lowering_and_stops_them(monkeypatch):
    # 0.4 needs three halvings (0.4 / 8 = 0.05, exactly the bound); min_lr stops at 0.3.
    assert _scripted(monkeypatch, [0.4], min_lr=0.0)[0] == 0.125
    assert _scripted(monkeypatch, [0.4, 0.4], min_lr=0.3) == [0.3, 0.3]


def test_a_batch_without_an_update_waits_and_non_finite_ratios_are_ignored(monkeypatch):
    assert _scripted(monkeypatch, [None, None, math.inf, 0.1]) == [0.5]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_update_ratio": 0},
        {"max_update_ratio": float("nan")},
        {"max_update_ratio": "0.1"},
        {"factor": 0},
        {"factor": 1.0},
        {"factor": 2},
        {"patience": 0},
        {"patience": 1.5},
        {"cooldown": -1},
        {"min_lr": -1e-3},
        {"every": 0},
        {"every": True},
        {"start_steps": -1},
        {"verbose": 2},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=rf"`{name}` must .* Received: {name}="):
        ReduceLROnHighUpdateRatio(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"schedule": 0.1}, "schedule"),
        ({"schedule": _decay(), "scale": 0}, "scale"),
        ({"schedule": _decay(), "scale": float("inf")}, "scale"),
    ],
)
def test_scaled_schedule_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"`{name}` must .* Received: {name}="):
        ScaledSchedule(**kwargs)


def test_a_callable_rate_or_an_uncompiled_model_is_refused():
    model = _unit_step_model(0.1)
    model.optimizer.learning_rate = lambda: 0.1
    x, y = _unit_step_data()
    with pytest.raises(ValueError, match="lowers a constant learning rate"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ReduceLROnHighUpdateRatio()])
    guard = ReduceLROnHighUpdateRatio()
    guard.set_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="needs a compiled model"):
        guard.on_train_begin()


# Two replicas need devices set up before the framework starts: a child Python.
# XLA cannot compile a MirroredStrategy step over two logical CPUs of one device (each
# replica's variables live on its own logical device), with or without the guard.
JITS = {"tensorflow": "jits = (False,)\n", "jax": "jits = (True, False)\n"}
TWO_REPLICAS_COMMON = """
import json
import numpy as np
import keras
from keras_relu.diagnostics import ReduceLROnHighUpdateRatio

class Steps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = []
    def on_train_batch_begin(self, batch, logs=None):
        self.before = float(self.model.get_weights()[0][0, 0])
    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(float(self.model.get_weights()[0][0, 0]) - self.before)

result = {"replicas": replicas}
for kind in ("constant", "schedule"):
    for jit in jits:
        with scope():
            rate = 0.18 if kind == "constant" else keras.optimizers.schedules.ExponentialDecay(
                0.18, decay_steps=4, decay_rate=0.5
            )
            dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
            model = keras.Sequential([keras.Input((4,)), dense])
            model.compile(keras.optimizers.SGD(rate), loss="mae", jit_compile=jit)
        steps, guard = Steps(), ReduceLROnHighUpdateRatio()
        x, y = np.ones((16, 4), "float32"), np.full((16, 1), 1e6, "float32")
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[guard, steps])
        result[f"{kind}_{jit}"] = {"steps": steps.steps, "history": guard.history}
print("RESULT " + json.dumps(result))
"""


@pytest.mark.skipif(BACKEND == "torch", reason="Keras has no distribution for torch.")
def test_under_two_replicas_the_rate_is_lowered_on_every_replica():
    """TensorFlow's MirroredStrategy or JAX's DataParallel over two virtual CPU devices:
    the kernel each step gives is the single-device one (every replica's step)."""
    result = run_with_two_devices(TWO_REPLICAS[BACKEND] + JITS[BACKEND] + TWO_REPLICAS_COMMON)
    assert result["replicas"] == 2
    jits = (True, False) if BACKEND == "jax" else (False,)
    assert len(result) == 1 + 2 * len(jits)
    for jit in jits:
        constant, schedule = result[f"constant_{jit}"], result[f"schedule_{jit}"]
        np.testing.assert_allclose(constant["steps"], [RATE] + [RATE / 4] * 7, rtol=1e-5, atol=3e-7)
        expected = [_decay_rate(0)] + [0.25 * _decay_rate(t) for t in range(1, 8)]
        np.testing.assert_allclose(schedule["steps"], expected, rtol=1e-5, atol=3e-7)
        for run in (constant, schedule):
            assert [entry["lowered"] for entry in run["history"]] == [True] + [False] * 7
