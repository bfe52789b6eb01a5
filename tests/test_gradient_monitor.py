"""GradientMonitor: gradients against a hand-written backward pass, update ratios against
a hand-computed SGD step, its warnings, logs, compile settings, mixed precision,
distribution and errors. Run once per KERAS_BACKEND."""

import csv
import pathlib
import sys
import warnings

import keras
import numpy as np
import pytest
from two_devices import TWO_REPLICAS
from two_devices import run_with_two_devices

import keras_relu
from keras_relu.diagnostics import GradientMonitor
from keras_relu.diagnostics import GradientWarning
from keras_relu.diagnostics.gradients import loss_gradients

FEATURES, HIDDEN = 5, 6
L2 = 0.01
BACKEND = keras.config.backend()


def _data(count=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, FEATURES)).astype("float32")
    y = (x @ rng.standard_normal((FEATURES, 1)) + 0.5).astype("float32")
    return x, y


def _mlp(optimizer=None, **compile_kwargs):
    """Dense -> ReLU -> Dense, an L2 penalty on the first kernel, mean squared error."""
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(
        HIDDEN,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=2),
        kernel_regularizer=keras.regularizers.L2(L2),
        name="hidden",
    )(inputs)
    hidden = keras_relu.ReLU(name="relu")(hidden)
    outputs = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed=3), name="out"
    )(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse", **compile_kwargs)
    return model


def _reference_gradients(model, x, y, sample_weight=None):
    """The MLP's loss gradients by hand: the backward pass of Dense -> ReLU -> Dense, MSE."""
    w1, b1, w2, b2 = (w.astype("float64") for w in model.get_weights())
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0)
    error = hidden @ w2 + b2 - y  # (n, 1)
    weights = np.ones(len(x)) if sample_weight is None else sample_weight
    # Keras's mean squared error: per-example mean over the output axis, weighted,
    # then summed and divided by the number of examples ("sum_over_batch_size").
    d_out = 2 * error * weights[:, None] / len(x)
    d_w2, d_b2 = hidden.T @ d_out, d_out.sum(axis=0)
    d_pre = (d_out @ w2.T) * (pre > 0)
    d_w1 = x.T @ d_pre + 2 * L2 * w1
    return {"hidden": [d_w1, d_pre.sum(axis=0)], "out": [d_w2, d_b2]}


def _norm(arrays):
    return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))


def _run_begin(monitor, model):
    """What `fit` does before the first batch, for tests of the first measurement."""
    monitor.set_model(model)
    monitor.set_params({"epochs": 1, "steps": 1, "verbose": 0})
    monitor.on_train_begin()
    return monitor.history[-1]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_gradients_equal_the_hand_written_backward_pass(weighted):
    model = _mlp()
    x, y = _data()
    sample_weight = np.linspace(0.5, 2.0, len(x)).astype("float32") if weighted else None
    reference = _reference_gradients(model, x, y, sample_weight)

    _, gradients = loss_gradients(model, x, y, sample_weight)
    expected = reference["hidden"] + reference["out"]
    for got, want in zip(gradients, expected, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-4, atol=1e-6)

    probe = (x, y) if sample_weight is None else (x, y, sample_weight)
    figures = _run_begin(GradientMonitor(probe), model)
    np.testing.assert_allclose(figures["grad_norm/hidden"], _norm(reference["hidden"]), rtol=1e-4)
    np.testing.assert_allclose(figures["grad_norm/out"], _norm(reference["out"]), rtol=1e-4)
    everything = reference["hidden"] + reference["out"]
    np.testing.assert_allclose(figures["grad_norm"], _norm(everything), rtol=1e-4)


def test_measuring_leaves_the_weights_and_gradients_alone():
    model = _mlp()
    x, y = _data()
    before = model.get_weights()
    _run_begin(GradientMonitor((x, y)), model)
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_update_ratio_after_one_sgd_step_is_the_hand_computed_one():
    learning_rate = 0.05
    model = _mlp(keras.optimizers.SGD(learning_rate))
    x, y = _data()
    start = model.get_weights()
    step = _reference_gradients(model, x, y)  # The training batch is the whole data.
    monitor = GradientMonitor(_data(seed=1), every=1)
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, callbacks=[monitor])
    for layer, first in (("hidden", 0), ("out", 2)):
        change = _norm([learning_rate * g for g in step[layer]])
        expected = change / _norm(start[first : first + 2])
        measured = monitor.history[-1][f"update_ratio/{layer}"]
        np.testing.assert_allclose(measured, expected, rtol=1e-4)
        np.testing.assert_allclose(history.history[f"update_ratio/{layer}"][0], expected, rtol=1e-4)


class _WeightsBeforeEachBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append(self.model.get_weights())


def test_epoch_update_ratio_is_over_the_epochs_last_step():
    model = _mlp(keras.optimizers.SGD(0.05))
    x, y = _data(48)
    recorder = _WeightsBeforeEachBatch()
    monitor = GradientMonitor(_data(seed=1))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, callbacks=[recorder, monitor])
    before = recorder.weights[-1]  # Before the last batch of the second epoch.
    after = model.get_weights()
    expected = _norm([after[0] - before[0], after[1] - before[1]]) / _norm(before[:2])
    np.testing.assert_allclose(monitor.history[-1]["update_ratio/hidden"], expected, rtol=1e-4)
    assert [m["step"] for m in monitor.history] == [0, 3, 6]


class _BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


def test_logs_reach_history_csv_logger_and_batch_logs(tmp_path):
    model = _mlp()
    x, y = _data(64)
    batch_logs = _BatchLogs()
    monitor = GradientMonitor((x[:16], y[:16]), every=2)
    csv_path = tmp_path / "log.csv"
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        callbacks=[monitor, batch_logs, keras.callbacks.CSVLogger(str(csv_path))],
    )
    keys = {"grad_norm", "grad_norm/hidden", "grad_norm/out"}
    keys |= {"update_ratio/hidden", "update_ratio/out"}
    assert keys <= set(history.history)
    assert all(len(history.history[k]) == 2 for k in keys)
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    assert keys <= set(rows[0]) and len(rows) == 2
    np.testing.assert_allclose(float(rows[1]["grad_norm"]), history.history["grad_norm"][1])
    # Every second batch: 4 batches an epoch, so batches 1 and 3 (0-based) carry figures.
    assert ["grad_norm" in logs for logs in batch_logs.logs] == [False, True] * 4
    # The start, 2 per epoch (the epoch end reuses the last batch's), so 5 in all.
    assert [m["step"] for m in monitor.history] == [0, 2, 4, 6, 8]
    assert history.history["grad_norm"][1] == monitor.history[-1]["grad_norm"]


def test_layers_are_named_by_path_shared_layers_once_frozen_left_out():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, name="inner"), keras_relu.PReLU(name="prelu")],
        name="block",
    )
    shared = keras.layers.Dense(4, name="shared")
    frozen = keras.layers.Dense(4, name="frozen", trainable=False)
    inputs = keras.Input((4,))
    x = shared(shared(inputs))
    x = frozen(keras_relu.ReLU(name="relu")(x))
    outputs = keras.layers.Dense(1, name="out")(inner(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    probe = (rng.standard_normal((8, 4)).astype("float32"), np.ones((8, 1), "float32"))
    figures = _run_begin(GradientMonitor(probe), model)
    layers = [k.split("/", 1)[1] for k in figures if k.startswith("grad_norm/")]
    assert layers == ["shared", "block/inner", "block/prelu", "out"]


def test_no_warning_when_training_is_healthy():
    model = _mlp(keras.optimizers.SGD(0.01))
    x, y = _data(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        model.fit(x, y, batch_size=16, epochs=3, callbacks=[GradientMonitor((x, y), every=1)])


def test_batchnorm_settling_in_the_first_epoch_is_not_growth():
    # Inputs of scale 0.001: until BatchNorm's moving variance has learned it, the
    # inference-mode probe sees activations 1000x too small, and the gradient norm grows
    # as the statistics settle. That is no explosion: the baseline is the first epoch's end.
    inputs = keras.Input((FEATURES,))
    dense = keras.layers.Dense(16)(inputs)
    hidden = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-8)(dense)
    outputs = keras.layers.Dense(1)(keras.layers.ReLU()(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x, y = _data(256)
    x = 0.001 * x
    monitor = GradientMonitor((x[:64], y[:64]), every=1, max_update_ratio=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        model.fit(x, y, batch_size=16, epochs=3, callbacks=[monitor], verbose=0)
    norms = [record["grad_norm"] for record in monitor.history]
    assert max(norms) > 10 * norms[1]  # What a baseline at the first step would call growth.


def test_an_exploding_gradient_and_large_updates_warn():
    # Linear least squares with a step far above 2 / curvature: the weights diverge.
    inputs = keras.Input((FEATURES,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="linear")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(3.0), loss="mse")
    x, y = _data(64)
    monitor = GradientMonitor((x, y), every=1, max_update_ratio=0.03, patience=3)
    with pytest.warns(GradientWarning) as caught:
        model.fit(x, y, batch_size=16, epochs=2, callbacks=[monitor])
    messages = [str(w.message) for w in caught]
    assert any("x its value at the end of the first epoch" in m for m in messages)
    assert any("(above growth_factor=10)" in m for m in messages)
    assert any("update ratio of linear has been above" in m for m in messages)


def test_a_non_finite_gradient_warns():
    model = _mlp()
    x, y = _data()
    y_bad = y.copy()
    y_bad[0] = np.inf
    with pytest.warns(GradientWarning, match="not finite in hidden, out"):
        _run_begin(GradientMonitor((x, y_bad)), model)


def test_each_warning_is_issued_once_per_fit():
    model = _mlp()
    x, y = _data()
    y_bad = y.copy()
    y_bad[0] = np.nan
    monitor = GradientMonitor((x, y_bad), every=1, max_update_ratio=None, growth_factor=None)
    with pytest.warns(GradientWarning) as caught:
        model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    assert len([w for w in caught if issubclass(w.category, GradientWarning)]) == 1


@pytest.mark.parametrize("setting", ["jit_compile", "no_jit_compile", "run_eagerly"])
def test_compile_settings_give_the_same_figures(setting):
    x, y = _data()
    reference = _reference_gradients(_mlp(), x, y)
    kwargs = {
        "jit_compile": {"jit_compile": True},
        "no_jit_compile": {"jit_compile": False},
        "run_eagerly": {"run_eagerly": True},
    }[setting]
    model = _mlp(**kwargs)
    monitor = GradientMonitor((x, y))
    figures = _run_begin(monitor, model)
    np.testing.assert_allclose(figures["grad_norm/hidden"], _norm(reference["hidden"]), rtol=1e-4)
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    assert np.isfinite(monitor.history[-1]["update_ratio/out"])


def test_mixed_precision_gradients_are_unscaled():
    x, y = _data()
    reference = _reference_gradients(_mlp(), x, y)
    keras.config.set_dtype_policy("mixed_float16")  # conftest restores float32.
    model = _mlp()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(keras.ops.convert_to_numpy(model.optimizer.scale_loss(1.0))) > 1
    figures = _run_begin(GradientMonitor((x, y)), model)
    # float16 activations: about 3 significant digits.
    np.testing.assert_allclose(figures["grad_norm/hidden"], _norm(reference["hidden"]), rtol=5e-3)
    np.testing.assert_allclose(figures["grad_norm/out"], _norm(reference["out"]), rtol=5e-3)


def test_training_mode_restores_batch_norm_statistics():
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.BatchNormalization(name="norm")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    before = [v.numpy() for v in model.non_trainable_variables]
    figures = _run_begin(GradientMonitor((x + 3.0, y), training=True), model)
    assert figures["grad_norm/norm"] > 0
    for variable, value in zip(model.non_trainable_variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


@pytest.mark.skipif(BACKEND == "torch", reason="Keras has no distribution for torch.")
def test_under_a_distribution_the_gradients_are_the_same():
    x, y = _data()
    reference = _reference_gradients(_mlp(), x, y)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
            model = _mlp()
    else:
        distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        keras.distribution.set_distribution(distribution)
        try:
            model = _mlp()
        finally:
            keras.distribution.set_distribution(None)
    monitor = GradientMonitor((x, y), every=2)
    figures = _run_begin(monitor, model)
    np.testing.assert_allclose(figures["grad_norm/hidden"], _norm(reference["hidden"]), rtol=1e-4)
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    assert np.isfinite(monitor.history[-1]["update_ratio/hidden"])


@pytest.mark.parametrize(
    "probe",
    [np.zeros((4, FEATURES)), (np.zeros((4, FEATURES)),), (np.zeros((4, FEATURES)), None)],
    ids=["array", "1-tuple", "none-target"],
)
def test_a_probe_without_targets_is_refused(probe):
    with pytest.raises(ValueError, match="`probe` must be a batch with targets"):
        GradientMonitor(probe)


@pytest.mark.parametrize(
    "kwargs",
    [{"every": 0}, {"max_update_ratio": 0}, {"patience": 0}, {"growth_factor": 1}],
    ids=lambda kwargs: next(iter(kwargs)),
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match=f"`{next(iter(kwargs))}`"):
        GradientMonitor(_data(), **kwargs)


def test_an_uncompiled_model_is_refused():
    model = _mlp()
    uncompiled = keras.Model(model.inputs, model.outputs)
    with pytest.raises(ValueError, match="needs a compiled model"):
        _run_begin(GradientMonitor(_data()), uncompiled)


def test_a_probe_the_loss_cannot_take_is_refused_at_train_begin():
    model = _mlp()
    x, y = _data()
    with pytest.raises(ValueError, match=r"cannot be evaluated on `probe` \(x, y shapes"):
        model.fit(x, y, epochs=1, callbacks=[GradientMonitor((x, y[:16]))])


# After `two_devices.TWO_REPLICAS` (a child Python: devices are set before the backend starts).
TWO_REPLICAS_COMMON = """
import json
import numpy as np
import keras
from keras_relu.diagnostics import GradientMonitor

def build():
    inputs = keras.Input((5,))
    init = keras.initializers.GlorotUniform(seed=1)
    hidden = keras.layers.Dense(6, "relu", kernel_initializer=init, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model

def figures(model):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    monitor = GradientMonitor((x, y), every=1)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, callbacks=[monitor], verbose=0)
    return monitor.history

single = build()
with scope():
    distributed = build()
distributed.set_weights(single.get_weights())
print("RESULT " + json.dumps({"single": figures(single), "distributed": figures(distributed)}))
"""


@pytest.mark.skipif(BACKEND == "torch", reason="Keras has no distribution for torch.")
def test_two_replicas_give_the_single_device_figures():
    result = run_with_two_devices(TWO_REPLICAS[BACKEND] + TWO_REPLICAS_COMMON)
    assert len(result["single"]) == 3  # The start and after each of the 2 steps.
    for single, distributed in zip(result["single"], result["distributed"], strict=True):
        assert single.keys() == distributed.keys()
        for key, value in single.items():
            np.testing.assert_allclose(distributed[key], value, rtol=1e-5, err_msg=key)


# Issue 27: the update ratio counts only the optimizer's real weight updates; the
# layer groups follow the model as it is built and frozen; a wrong probe is named cleanly.


def _ratio(before, after):
    """||after - before|| / ||before|| over lists of arrays."""
    return _norm([a - b for a, b in zip(after, before, strict=True)]) / _norm(before)


def _layer_weights(weights, layer):
    """The MLP's `[kernel, bias]` of `layer` ("hidden" or "out") from `get_weights()`."""
    first = {"hidden": 0, "out": 2}[layer]
    return weights[first : first + 2]


class SubclassedMLP(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(HIDDEN, name="hidden")
        self.relu = keras_relu.ReLU(name="relu")
        self.out = keras.layers.Dense(1, name="out")

    def call(self, inputs):
        return self.out(self.relu(self.hidden(inputs)))


def test_a_subclassed_model_built_by_fit_gets_per_layer_figures():
    # TensorFlow builds a subclassed model in `fit`, after `on_train_begin`.
    model = SubclassedMLP()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x, y = _data()
    monitor = GradientMonitor(_data(seed=1))
    history = model.fit(x, y, batch_size=16, epochs=2, callbacks=[monitor], verbose=0)
    for key in ("grad_norm/hidden", "grad_norm/out", "update_ratio/hidden", "update_ratio/out"):
        assert len(history.history[key]) == 2, key
        assert all(value > 0 for value in history.history[key]), key


def _unknown_length(x, y, batch_size):
    """`(x, y)` as a tf.data pipeline whose length Keras cannot know (`.filter`)."""
    tf = pytest.importorskip("tensorflow")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    data = data.filter(lambda x, y: True)
    assert int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    return data


# Keras's JAX and torch trainers warn when a dataset of unknown length ends.
_RAN_OUT = "ignore:Your input ran out of data:UserWarning"


@pytest.mark.filterwarnings(_RAN_OUT)
@pytest.mark.parametrize("every", [None, 2])
def test_a_dataset_of_unknown_length_measures_its_last_real_step(every):
    model = _mlp(keras.optimizers.SGD(0.05))
    x, y = _data(48)
    recorder = _WeightsBeforeEachBatch()
    monitor = GradientMonitor(_data(seed=1), every=every, max_update_ratio=None)
    history = model.fit(
        _unknown_length(x, y, 16), epochs=2, callbacks=[recorder, monitor], verbose=0
    )
    # On TensorFlow and JAX an extra "batch" meets the end of the data and runs no step
    # (torch's trainer meets it before a batch begins): the epoch's ratio is over its
    # third batch, from the weights the recorder saw before that one.
    after = model.get_weights()
    if BACKEND == "torch":
        assert len(recorder.weights) == 6  # 2 epochs x 3 batches.
        before = recorder.weights[-1]
    else:
        assert len(recorder.weights) == 8  # 2 epochs x (3 batches + the end of the data).
        before = recorder.weights[-2]
        np.testing.assert_array_equal(recorder.weights[-1][0], after[0])
    for layer in ("hidden", "out"):
        expected = _ratio(_layer_weights(before, layer), _layer_weights(after, layer))
        assert expected > 0
        np.testing.assert_allclose(history.history[f"update_ratio/{layer}"][1], expected, rtol=1e-4)
    # TensorFlow's optimizer counts the end of the data as an iteration (8, not 6).
    assert monitor.history[-1]["step"] == int(model.optimizer.iterations.numpy())


@pytest.mark.filterwarnings(_RAN_OUT)
def test_a_dataset_of_unknown_length_can_warn_about_the_update_ratio():
    model = _mlp(keras.optimizers.Adam(0.05))
    x, y = _data(64)
    monitor = GradientMonitor((x, y), max_update_ratio=0.01, patience=2, growth_factor=None)
    with pytest.warns(GradientWarning) as caught:
        model.fit(_unknown_length(x, y, 16), epochs=3, callbacks=[monitor], verbose=0)
    assert any("update ratio of hidden has been above" in str(w.message) for w in caught)


def test_gradient_accumulation_ratios_are_over_real_updates():
    learning_rate = 0.05
    model = _mlp(keras.optimizers.SGD(learning_rate, gradient_accumulation_steps=2))
    x, y = _data(64)
    recorder = _WeightsBeforeEachBatch()
    monitor = GradientMonitor(_data(seed=1), every=1)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[recorder, monitor])
    # The start, then one measurement per batch; batches 1 and 3 (0-based) update the
    # weights, 0 and 2 only accumulate: they report no update ratio (not 0.0).
    has_ratio = ["update_ratio/hidden" in m for m in monitor.history]
    assert has_ratio == [False, False, True, False, True]
    assert [m["step"] for m in monitor.history] == [0, 0, 1, 1, 2]
    weights = recorder.weights + [model.get_weights()]
    for measurement, batch in ((monitor.history[2], 1), (monitor.history[4], 3)):
        np.testing.assert_array_equal(weights[batch][0], weights[batch - 1][0])
        for layer in ("hidden", "out"):
            expected = _ratio(
                _layer_weights(weights[batch], layer), _layer_weights(weights[batch + 1], layer)
            )
            np.testing.assert_allclose(measurement[f"update_ratio/{layer}"], expected, rtol=1e-4)


def test_gradient_accumulation_epoch_ratio_is_over_the_last_real_update():
    # 3 batches an epoch, updates on every second batch: the first epoch's last batch
    # only accumulates, its last update is batch 1's.
    model = _mlp(keras.optimizers.SGD(0.05, gradient_accumulation_steps=2))
    x, y = _data(48)
    recorder = _WeightsBeforeEachBatch()
    monitor = GradientMonitor(_data(seed=1))
    history = model.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, callbacks=[recorder, monitor], verbose=0
    )
    before, after = recorder.weights[1], recorder.weights[2]
    expected = _ratio(_layer_weights(before, "hidden"), _layer_weights(after, "hidden"))
    assert expected > 0
    np.testing.assert_allclose(history.history["update_ratio/hidden"][0], expected, rtol=1e-4)
    assert monitor.history[-1]["step"] == 1


def test_gradient_accumulation_does_not_reset_patience():
    def warnings_at(accumulation):
        model = _mlp(keras.optimizers.SGD(0.1, gradient_accumulation_steps=accumulation))
        x, y = _data(64)
        monitor = GradientMonitor(
            (x, y), every=1, max_update_ratio=1e-3, patience=3, growth_factor=None
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GradientWarning)
            model.fit(x, y, batch_size=8, epochs=2, callbacks=[monitor], verbose=0)
        return [w for w in caught if issubclass(w.category, GradientWarning)]

    assert len(warnings_at(None)) == 2  # hidden and out
    assert len(warnings_at(2)) == 2


class _FreezeAt(keras.callbacks.Callback):
    """Freezes `layer` at the end of batch `batch` of the first epoch."""

    def __init__(self, layer, batch):
        super().__init__()
        self.layer, self.batch = layer, batch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch and self.model.get_layer(self.layer).trainable:
            self.model.get_layer(self.layer).trainable = False


@pytest.mark.skipif(
    BACKEND == "jax",
    reason="Keras's JAX trainer cannot change the trainable set during fit: its own state "
    "sync assigns the old set's values to the new one, without any monitor.",
)
@pytest.mark.parametrize("order", ["freeze_first", "monitor_first"])
def test_a_layer_frozen_during_fit_is_left_out_from_then_on(order):
    model = _mlp(keras.optimizers.SGD(0.05))
    x, y = _data(64)
    monitor = GradientMonitor(_data(seed=1), every=1, max_update_ratio=None)
    freeze = _FreezeAt("hidden", 1)
    callbacks = [freeze, monitor] if order == "freeze_first" else [monitor, freeze]
    model.fit(x, y, batch_size=16, epochs=2, callbacks=callbacks, verbose=0)
    assert "grad_norm/hidden" in monitor.history[1]
    last = monitor.history[-1]
    assert "grad_norm/hidden" not in last and "update_ratio/hidden" not in last
    reference = _reference_gradients(model, *_data(seed=1))
    np.testing.assert_allclose(last["grad_norm/out"], _norm(reference["out"]), rtol=1e-4)
    np.testing.assert_allclose(last["grad_norm"], _norm(reference["out"]), rtol=1e-4)


@pytest.mark.skipif(
    BACKEND == "torch", reason="Keras's torch trainer refuses steps_per_execution > 1."
)
@pytest.mark.parametrize("every", [None, 2])
def test_steps_per_execution_reports_the_optimizer_iterations(every):
    model = _mlp(keras.optimizers.SGD(0.05), steps_per_execution=3)
    x, y = _data(128)
    monitor = GradientMonitor(_data(seed=1), every=every, max_update_ratio=1e-6, patience=1)
    with pytest.warns(GradientWarning) as caught:
        model.fit(x, y, batch_size=16, epochs=2, callbacks=[monitor], verbose=0)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert iterations == 16
    steps = [m["step"] for m in monitor.history]
    assert steps[-1] == 16 and 8 in steps and all(s <= 16 for s in steps)
    assert sorted(steps) == steps
    first = min(m["step"] for m in monitor.history if "update_ratio/hidden" in m)
    assert any(f"Epoch 1, step {first}:" in str(w.message) for w in caught)


def _dead_mlp(optimizer):
    """The MLP with 3 of its 6 hidden units dead on every input (bias -100)."""
    model = _mlp(optimizer)
    kernel, bias, *rest = model.get_weights()
    bias[:3] = -100.0
    model.set_weights([kernel, bias, *rest])
    return model


@pytest.mark.parametrize("every", [None, 1])
def test_revival_edits_are_not_an_optimizer_step_whatever_the_order(every):
    from keras_relu.diagnostics import ReviveDeadUnits

    x, y = _data(64)
    histories = {}
    for order in ("monitor_first", "revive_first"):
        keras.utils.set_random_seed(0)
        model = _dead_mlp(keras.optimizers.SGD(0.01))
        monitor = GradientMonitor(_data(seed=1), every=every, max_update_ratio=None)
        reviver = ReviveDeadUnits(x, every_n_batches=2 if every else None, seed=0)
        callbacks = [monitor, reviver] if order == "monitor_first" else [reviver, monitor]
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, callbacks=callbacks, verbose=0)
        assert sum(report.total for _, _, report in reviver.reports) > 0
        histories[order] = monitor.history
    first, second = histories["monitor_first"], histories["revive_first"]
    assert [m.keys() for m in first] == [m.keys() for m in second]
    for a, b in zip(first, second, strict=True):
        for key in a:
            if key.startswith("update_ratio/"):
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)
    # The optimizer's step alone is small; the revival's new weights are not.
    assert max(m.get("update_ratio/hidden", 0) for m in second) < 0.1


def test_update_ratio_tracker_counts_only_optimizer_updates():
    from keras_relu.diagnostics.gradients import UpdateRatioTracker
    from keras_relu.diagnostics.gradients import before_weight_edit

    model = _mlp(keras.optimizers.SGD(0.05))
    x, y = _data()
    tracker = UpdateRatioTracker(model)
    tracker.before_step()
    assert tracker.after_step() is None  # No step in between.
    start = model.get_weights()
    tracker.before_step()
    model.train_on_batch(x, y)
    stepped = model.get_weights()
    before_weight_edit(model.trainable_variables)  # Announced: not counted.
    model.set_weights([w * 2 for w in stepped])
    ratios = tracker.after_step()
    assert set(ratios) == {"hidden", "out"}
    expected = _ratio(_layer_weights(start, "out"), _layer_weights(stepped, "out"))
    np.testing.assert_allclose(ratios["out"], expected, rtol=1e-5)
    assert tracker.after_step() is None  # Each update is handed out once.


def test_a_probe_of_the_wrong_shape_gets_the_same_clean_message_on_every_backend():
    model = _mlp()
    x, y = _data()
    with pytest.raises(ValueError) as caught:
        model.fit(x, y, epochs=1, callbacks=[GradientMonitor((x[:, :3], y))], verbose=0)
    message = str(caught.value)
    assert message == (
        "GradientMonitor: `probe`'s x has shape (32, 3), but the model takes inputs "
        "of shape (None, 5). Received: probe with x, y shapes ((32, 3), (32, 1))"
    )


def test_the_studys_gradient_norms_run_on_this_backend():
    # Issue 27, item 22: examples/dying/cures.py differentiated with jax.grad by hand.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
    from dying import cures
    from dying import trained

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (24, 4, 4, 3)).astype("uint8")
    y_train = rng.integers(0, 10, 24)
    data = ((x_train, y_train), (x_train[:8], y_train[:8]))
    norms = cures.gradient_norms(data, {"batch_size": 8}, [1e-3], seed=0)[1e-3]
    assert len(norms["steps"]) == 3  # 24 images in batches of 8.
    assert all(len(step) == len(norms["variables"]) for step in norms["steps"])
    # The first step's norms: the compiled loss's gradient on the first batch, from the
    # same initial weights.
    pixels = x_train.reshape(-1, 3).astype("float64")
    model = trained.build_mlp(
        "relu", 0, (4, 4, 3), mean=pixels.mean(axis=0), std=pixels.std(axis=0)
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    first = np.random.default_rng(0).permutation(24)[:8]
    _, gradients = loss_gradients(model, x_train[first].astype("float32"), y_train[first])
    expected = [np.linalg.norm(keras.ops.convert_to_numpy(g)) for g in gradients]
    assert min(expected) > 0
    np.testing.assert_allclose(norms["steps"][0], expected, rtol=1e-4)
    assert norms["steps"][1] != norms["steps"][0]  # Trained between steps.
