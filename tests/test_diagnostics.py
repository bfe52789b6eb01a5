"""keras_relu.diagnostics against hand-built layers whose dead units are known."""

import csv

import keras
import numpy as np
import pytest

import keras_relu
from keras_relu import diagnostics

# Positive inputs, so a unit with a positive kernel fires and one with a zero
# kernel and a negative bias never does.
INPUTS = np.random.default_rng(0).uniform(0.5, 1.5, size=(24, 3)).astype("float32")


def dense_with_dead_unit(activation="relu", units=4, dead=2, name="dense"):
    """A Dense layer whose unit `dead` has a zero kernel and bias -1: never above 0."""
    layer = keras.layers.Dense(units, activation=activation, name=name)
    layer.build((None, 3))
    kernel = np.ones((3, units), "float32")
    kernel[:, dead] = 0.0
    bias = np.zeros(units, "float32")
    bias[dead] = -1.0
    layer.set_weights([kernel, bias])
    return layer


def test_dense_with_a_dead_unit():
    model = keras.Sequential([keras.Input((3,)), dense_with_dead_unit()])
    stats = diagnostics.activation_stats(model, INPUTS)
    assert stats == {
        "dense": {"units": 4, "dead_fraction": 0.25, "inactive_fraction": 0.25, "sparsity": 0.25}
    }


def half_stuck_dense(bias, units=4, activation=None, name="dense"):
    """Dense on INPUTS: units [0, units/2) are `bias` (zero kernel), the rest above 1.5."""
    layer = keras.layers.Dense(units, activation=activation, name=name)
    layer.build((None, 3))
    kernel = np.ones((3, units), "float32")
    kernel[:, : units // 2] = 0.0
    layer.set_weights([kernel, np.where(np.arange(units) < units // 2, bias, 0.0)])
    return layer


@pytest.mark.parametrize("bias", [-3.0, 3.0])
def test_inactive_fraction_counts_units_stuck_below_0_for_every_variant(variant, bias):
    model = keras.Sequential([keras.Input((3,)), half_stuck_dense(bias), variant.layer(name="act")])
    stats = diagnostics.activation_stats(model, INPUTS)["act"]
    # A stuck unit's input is `bias` on every example: inactive iff bias <= 0, whatever the
    # variant; dead only where the variant maps it to exactly 0. CReLU's units are
    # relu(x) and relu(-x): each live unit's relu(-x) half is inactive and dead too.
    crelu = variant.name == "crelu"
    stuck_output = keras.ops.convert_to_numpy(variant.layer()(np.full((1, 1), bias, "float32")))
    expected_inactive = 0.5 if crelu or bias < 0 else 0.0
    expected_dead = 0.5 if crelu or stuck_output[0, 0] == 0 else 0.0
    assert stats["inactive_fraction"] == expected_inactive
    assert stats["dead_fraction"] == expected_dead
    assert stats["units"] == (8 if crelu else 4)


@pytest.mark.parametrize("activation", ["relu", "elu", "gelu", "sigmoid", "crelu"])
def test_inactive_fraction_of_inline_activations_is_taken_before_them(activation):
    dense = half_stuck_dense(-3.0, activation=activation)
    model = keras.Sequential([keras.Input((3,)), dense])
    stats = diagnostics.activation_stats(model, INPUTS)["dense"]
    outputs = keras.ops.convert_to_numpy(model(INPUTS))
    assert stats["inactive_fraction"] == 0.5
    assert stats["dead_fraction"] == np.mean(np.all(outputs == 0, axis=0))
    # The user's layer keeps its activation; the probe never switched it off.
    assert dense.activation is keras.activations.get(activation)


def test_inactive_fraction_follows_the_current_weights():
    dense = half_stuck_dense(-3.0, activation="elu")
    model = keras.Sequential([keras.Input((3,)), dense])
    monitor = diagnostics.DeadUnitMonitor(INPUTS, warn_above=None)
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["inactive_fraction"] == logs["inactive_fraction/dense"] == 0.5
    assert logs["dead_fraction"] == 0.0
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, -bias])  # The stuck units' bias becomes +3.
    monitor.on_epoch_end(1, logs)
    assert logs["inactive_fraction/dense"] == 0.0


def test_inline_activation_of_a_layer_without_a_config_has_no_inactive_figure():
    class Scaled(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.activation = keras.activations.relu

        def call(self, x):
            return self.activation(x - 1.0)

        def get_config(self):
            raise NotImplementedError

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Scaled(name="scaled")(inputs))
    stats = diagnostics.activation_stats(model, INPUTS)
    assert stats == {
        "scaled": {"units": 3, "dead_fraction": 0.0, "sparsity": np.mean(INPUTS <= 1.0)}
    }
    assert diagnostics.summarize(stats).keys() == {"dead_fraction", "sparsity"}


@pytest.mark.parametrize("dead_first", [False, True])
def test_every_use_of_a_shared_layer_is_measured(dead_first):
    inputs = keras.Input((3,))
    shared = keras_relu.ReLU(name="shared")
    live = shared(half_stuck_dense(3.0, name="live_dense")(inputs))
    dead = shared(half_stuck_dense(-3.0, units=2, name="dead_dense")(inputs))
    outputs = [dead, live] if dead_first else [live, dead]
    stats = diagnostics.activation_stats(keras.Model(inputs, outputs), INPUTS)
    assert set(stats) == {"shared", "shared@1"}
    # The 2-unit use has unit 0 stuck at -3 (dead) and unit 1 alive; the 4-unit use lives.
    by_units = {s["units"]: s for s in stats.values()}
    assert by_units[2]["dead_fraction"] == by_units[2]["inactive_fraction"] == 0.5
    assert by_units[4]["dead_fraction"] == by_units[4]["inactive_fraction"] == 0.0


def test_every_use_of_a_nested_model_is_measured():
    inner_inputs = keras.Input((4,))
    block = keras.Model(inner_inputs, keras_relu.ELU(name="elu")(inner_inputs), name="block")
    inputs = keras.Input((3,))
    first = block(half_stuck_dense(-3.0, name="stuck")(inputs))
    second = block(half_stuck_dense(3.0, name="free")(inputs))
    model = keras.Model(inputs, keras.layers.Concatenate()([first, second]))
    monitor = diagnostics.DeadUnitMonitor(INPUTS, warn_above=None)
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["inactive_fraction/block/elu"] == 0.5
    assert logs["inactive_fraction/block@1/elu"] == 0.0
    assert logs["dead_fraction/block/elu"] == logs["dead_fraction/block@1/elu"] == 0.0
    assert logs["inactive_fraction"] == 0.25


def test_conv_channel_dead_on_every_position():
    conv = keras.layers.Conv2D(3, 1, name="conv")
    conv.build((None, 5, 5, 2))
    kernel = np.ones((1, 1, 2, 3), "float32")
    kernel[..., 1] = 0.0
    conv.set_weights([kernel, np.array([0.0, -1.0, 0.0], "float32")])
    inputs = keras.Input((5, 5, 2))
    outputs = keras_relu.ReLU(name="act")(conv(inputs))
    model = keras.Model(inputs, outputs)
    images = np.abs(np.random.default_rng(1).normal(size=(6, 5, 5, 2))).astype("float32") + 0.1
    # Channel 0 silent at a single position only: still alive.
    images[:, 0, 0, :] = -1.0
    stats = diagnostics.activation_stats(model, images)["act"]
    assert stats["units"] == 3
    assert stats["dead_fraction"] == pytest.approx(1 / 3)
    # Channel 1 everywhere, channels 0 and 2 at position (0, 0) of each image.
    assert stats["sparsity"] == pytest.approx((6 * 25 + 2 * 6) / (6 * 25 * 3))


def test_relu6_saturation_is_reported_for_relu6_layers_only():
    inputs = keras.Input((3,))
    x = dense_with_dead_unit(activation=None, units=2, dead=1)(inputs)
    scaled = keras.layers.Rescaling(10.0)(x)  # Unit 0 is above 6 for every input.
    capped = keras_relu.ReLU6(name="relu6")(scaled)
    keras_capped = keras.layers.ReLU(max_value=6.0, name="keras_relu6")(scaled)
    plain = keras.layers.ReLU(name="plain")(scaled)
    model = keras.Model(inputs, [capped, keras_capped, plain])
    stats = diagnostics.activation_stats(model, INPUTS)
    for name in ("relu6", "keras_relu6"):
        assert stats[name] == {
            "units": 2,
            "dead_fraction": 0.5,
            "inactive_fraction": 0.5,
            "sparsity": 0.5,
            "saturated_fraction": 0.5,
        }
    assert "saturated_fraction" not in stats["plain"]


def test_leaky_variants_keep_their_negative_unit_alive():
    inputs = keras.Input((3,))
    x = dense_with_dead_unit(activation=None)(inputs)
    model = keras.Model(inputs, [keras_relu.LeakyReLU(name="leaky")(x), keras_relu.ELU()(x)])
    stats = diagnostics.activation_stats(model, INPUTS)
    assert [s["dead_fraction"] for s in stats.values()] == [0.0, 0.0]
    assert [s["sparsity"] for s in stats.values()] == [0.0, 0.0]


@pytest.mark.parametrize(
    "layer, measured",
    [
        (keras.layers.Dense(2, activation="relu"), True),
        (keras.layers.Conv2D(2, 3, activation="gelu"), True),
        (keras.layers.Activation("swish"), True),
        (keras.layers.LeakyReLU(), True),
        (keras.layers.PReLU(), True),
        (keras_relu.CReLU(), True),
        (keras_relu.PReLU(), True),
        (keras.layers.Dense(2), False),
        (keras.layers.Activation("linear"), False),
        (keras.layers.BatchNormalization(), False),
        (keras.layers.LSTM(2), False),
    ],
)
def test_which_layers_are_activation_layers(layer, measured):
    assert diagnostics.is_activation_layer(layer) is measured


def test_nested_models_are_entered_and_named_by_path():
    inner_inputs = keras.Input((4,))
    inner = keras.Model(
        inner_inputs, keras_relu.ReLU(name="inner_relu")(inner_inputs), name="functional_inner"
    )
    block = keras.Sequential(
        [keras.Input((4,)), inner, keras.layers.Dense(2, activation="relu", name="head")],
        name="block",
    )
    inputs = keras.Input((3,))
    outputs = block(dense_with_dead_unit(activation=None)(inputs))
    model = keras.Sequential([keras.Input((3,)), keras.Model(inputs, outputs, name="net")])
    stats = diagnostics.activation_stats(model, INPUTS)
    assert list(stats) == ["net/block/functional_inner/inner_relu", "net/block/head"]
    assert stats["net/block/functional_inner/inner_relu"]["dead_fraction"] == 0.25
    # The probe runs the same weights: the head's sparsity matches a direct computation.
    head_outputs = keras.ops.convert_to_numpy(model(INPUTS))
    assert stats["net/block/head"]["sparsity"] == pytest.approx(np.mean(head_outputs == 0))


def test_batches_accumulate_and_labels_are_ignored():
    model = keras.Sequential([keras.Input((3,)), dense_with_dead_unit()])
    # Units 1-3 are inputs 0-2 minus 1; unit 0 is -1.
    model.layers[0].set_weights([np.eye(3, 4, 1, dtype="float32"), np.full(4, -1.0, "float32")])
    firing = np.full((24, 3), 0.5, "float32")
    firing[-1, 0] = 2.0  # Unit 1 fires on the last example only.
    whole = diagnostics.activation_stats(model, firing)
    assert whole["dense"]["dead_fraction"] == 0.75
    labels = np.zeros(len(firing))
    in_batches = diagnostics.activation_stats(model, (firing, labels), batch_size=5)
    from_iterable = diagnostics.activation_stats(
        model, iter([(firing[:20], labels[:20]), firing[20:]])
    )
    assert in_batches == whole == from_iterable


def test_subclassed_models_are_refused_with_a_message():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="Functional or Sequential"):
        diagnostics.activation_stats(Subclassed(), INPUTS)


def test_monitor_logs_reach_history_and_csv_logger(tmp_path):
    model = keras.Sequential(
        [keras.Input((3,)), dense_with_dead_unit(), keras.layers.Dense(1, name="out")]
    )
    model.layers[0].trainable = False  # Keep the hand-built dead unit dead.
    model.compile(optimizer="sgd", loss="mse")
    monitor = diagnostics.DeadUnitMonitor(INPUTS, warn_above=None)
    csv_path = tmp_path / "log.csv"
    history = model.fit(
        INPUTS,
        INPUTS[:, :1],
        epochs=2,
        verbose=0,
        callbacks=[monitor, keras.callbacks.CSVLogger(str(csv_path))],
    )
    assert history.history["dead_fraction"] == [0.25, 0.25]
    assert history.history["dead_fraction/dense"] == [0.25, 0.25]
    assert history.history["sparsity/dense"] == [0.25, 0.25]
    assert history.history["inactive_fraction"] == [0.25, 0.25]
    assert history.history["inactive_fraction/dense"] == [0.25, 0.25]
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    assert [float(row["dead_fraction/dense"]) for row in rows] == [0.25, 0.25]
    assert [float(row["inactive_fraction/dense"]) for row in rows] == [0.25, 0.25]


def test_monitor_warns_past_its_threshold():
    model = keras.Sequential([keras.Input((3,)), dense_with_dead_unit()])
    monitor = diagnostics.DeadUnitMonitor(INPUTS, warn_above=0.2)
    monitor.set_model(model)
    logs = {}
    with pytest.warns(diagnostics.DeadUnitWarning, match="dense 25%"):
        monitor.on_epoch_end(0, logs)
    assert logs["dead_fraction"] == 0.25
    quiet = diagnostics.DeadUnitMonitor(INPUTS, warn_above=0.3)
    quiet.set_model(model)
    quiet.on_epoch_end(0, {})  # No warning: warnings are errors under pytest here.


def test_monitor_rejects_a_threshold_outside_0_1():
    with pytest.raises(ValueError, match="warn_above"):
        diagnostics.DeadUnitMonitor(INPUTS, warn_above=20)
