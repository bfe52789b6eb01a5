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
        (keras.layers.LSTMCell(2), False),
        (keras.layers.TimeDistributed(keras.layers.Dense(2, activation="relu")), False),
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


# Channels-first: 4 of 8 channels stuck below 0 (zero weights, bias -1), on images
# (batch, 2, 5, 5) whose values are all positive.
CHANNELS_FIRST_IMAGES = (
    np.abs(np.random.default_rng(2).normal(size=(6, 2, 5, 5))).astype("float32") + 0.1
)


def half_dead_channels_first_conv(activation=None, name="conv"):
    conv = keras.layers.Conv2D(8, 1, activation=activation, data_format="channels_first", name=name)
    conv.build((None, 2, 5, 5))
    kernel = np.ones((1, 1, 2, 8), "float32")
    kernel[..., :4] = 0.0
    conv.set_weights([kernel, np.where(np.arange(8) < 4, -1.0, 0.0).astype("float32")])
    return conv


def half_dead_channels_first_norm(name="bn"):
    """BatchNormalization(axis=1) mapping channels 0-3 to -1 and 4-7 to the input + 1."""
    norm = keras.layers.BatchNormalization(axis=1, name=name)
    norm.build((None, 8, 5, 5))
    gamma = np.where(np.arange(8) < 4, 0.0, 1.0).astype("float32")
    beta = np.where(np.arange(8) < 4, -1.0, 1.0).astype("float32")
    norm.set_weights([gamma, beta, np.zeros(8, "float32"), np.full(8, 1.0 - 1e-3, "float32")])
    return norm


# TensorFlow has no channels-first (NCHW) convolution kernel on the CPU: Keras's own
# model cannot run there, so that context exists only on a GPU.
NCHW_CONV_UNAVAILABLE = keras.config.backend() == "tensorflow" and not (
    __import__("tensorflow").config.list_physical_devices("GPU")
)


@pytest.mark.skipif(NCHW_CONV_UNAVAILABLE, reason="TensorFlow's CPU Conv2D has no NCHW kernel")
def test_channels_first_convolution_is_measured_on_its_channels():
    inputs = keras.Input((2, 5, 5))
    inline = half_dead_channels_first_conv(activation="relu", name="inline")(inputs)
    linear = half_dead_channels_first_conv(name="linear")(inputs)
    after = keras_relu.ReLU(name="after")(keras.layers.Dropout(0.5)(linear))
    op = keras.ops.relu(linear)
    model = keras.Model(inputs, [inline, after, op])
    stats = diagnostics.activation_stats(model, CHANNELS_FIRST_IMAGES)
    for path in ("inline", "after", op._keras_history[0].name):
        assert stats[path]["units"] == 8
        assert stats[path]["dead_fraction"] == stats[path]["inactive_fraction"] == 0.5


def test_channels_first_normalization_gives_the_next_activation_its_axis():
    # (batch, 8, 5, 5) from the images: channels on axis 1, the last axis has 5.
    inputs = keras.Input((2, 5, 5))
    x = keras.layers.Concatenate(axis=1)([inputs] * 4)
    x = half_dead_channels_first_norm()(x)
    relu = keras_relu.ReLU(name="relu")(keras.layers.Dropout(0.5)(x))
    activation = keras.layers.Activation("relu", name="activation")(x)
    model = keras.Model(inputs, [relu, activation])
    stats = diagnostics.activation_stats(model, CHANNELS_FIRST_IMAGES)
    for path in ("relu", "activation"):
        assert stats[path]["units"] == 8
        assert stats[path]["dead_fraction"] == stats[path]["inactive_fraction"] == 0.5


def test_crelu_units_lie_along_its_axis():
    # CReLU(axis=1) of (batch, 2, 5, 5): 4 units on axis 1, relu(x) and relu(-x) of
    # positive images: the relu(-x) half is dead.
    inputs = keras.Input((2, 5, 5))
    model = keras.Model(inputs, keras_relu.CReLU(axis=1, name="crelu")(inputs))
    stats = diagnostics.activation_stats(model, CHANNELS_FIRST_IMAGES)["crelu"]
    assert stats["units"] == 4
    assert stats["dead_fraction"] == stats["inactive_fraction"] == 0.5


def test_masked_positions_are_left_out():
    # Token 0 (padding) embeds to (-1, -1), every other token to (1, 1). Units 0 and 1
    # fire on real tokens; unit 2 (kernel -1) only on padding.
    embedding = keras.layers.Embedding(10, 2, mask_zero=True, name="embedding")
    dense = keras.layers.Dense(3, activation="relu", name="dense")
    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, dense(embedding(inputs)))
    embedding.set_weights([np.where(np.arange(10)[:, None] == 0, -1.0, 1.0).repeat(2, 1)])
    dense.set_weights([np.array([[1, 1, -1], [1, 1, -1]], "float32"), np.zeros(3, "float32")])
    tokens = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    stats = diagnostics.activation_stats(model, tokens)["dense"]
    assert stats["dead_fraction"] == stats["inactive_fraction"] == pytest.approx(1 / 3)
    # Five real tokens x 3 units, of which unit 2's five outputs are 0.
    assert stats["sparsity"] == pytest.approx(5 / 15)
    # The per-unit figure the issue asks for: a model of unit 2 alone is all dead.
    only_padding = keras.layers.Dense(1, activation="relu", name="padding_unit")
    model = keras.Model(inputs, only_padding(embedding(inputs)))
    only_padding.set_weights([np.full((2, 1), -1.0, "float32"), np.zeros(1, "float32")])
    stats = diagnostics.activation_stats(model, tokens)["padding_unit"]
    assert stats["dead_fraction"] == stats["inactive_fraction"] == stats["sparsity"] == 1.0


def test_keras_ops_and_package_function_nodes_are_measured():
    inputs = keras.Input((3,))
    x = dense_with_dead_unit(activation=None)(inputs)
    outputs = [
        keras.ops.relu(x),
        keras.ops.relu6(x),
        keras_relu.activations.leaky_relu(x, negative_slope=0.0),
        keras_relu.activations.crelu(x),
    ]
    model = keras.Model(inputs, outputs)
    names = [tensor._keras_history[0].name for tensor in outputs]
    stats = diagnostics.activation_stats(model, INPUTS)
    assert set(stats) == set(names)
    for name in names[:3]:
        assert stats[name]["dead_fraction"] == stats[name]["inactive_fraction"] == 0.25
    assert stats[names[1]]["saturated_fraction"] == 0.0
    crelu = stats[names[3]]
    # relu(x) loses unit 2; relu(-x) of the 3 live units is dead, of unit 2 alive.
    assert crelu["units"] == 8
    assert crelu["dead_fraction"] == crelu["inactive_fraction"] == 4 / 8


def test_a_graph_of_only_function_nodes_is_measured():
    inputs = keras.Input((3,))
    outputs = keras.ops.relu(keras.ops.subtract(inputs, 1.0))
    stats = diagnostics.activation_stats(keras.Model(inputs, outputs), INPUTS)
    assert list(stats.values())[0]["sparsity"] == np.mean(INPUTS <= 1.0)


def test_time_distributed_is_measured_on_its_inner_activation():
    dense = dense_with_dead_unit(name="inner")
    wrapper = keras.layers.TimeDistributed(dense, name="frames")
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, wrapper(inputs))
    stats = diagnostics.activation_stats(model, INPUTS.reshape(6, 4, 3))
    assert stats == {
        "frames/inner": {
            "units": 4,
            "dead_fraction": 0.25,
            "inactive_fraction": 0.25,
            "sparsity": 0.25,
        }
    }


def test_time_distributed_crelu_keeps_its_own_axis():
    # CReLU(axis=1) on frames of (2, 3): axis 2 of the wrapper's (batch, time, 2, 3).
    frames = np.abs(INPUTS.reshape(4, 3, 2, 3)) + 0.1
    inputs = keras.Input((3, 2, 3))
    wrapper = keras.layers.TimeDistributed(keras_relu.CReLU(axis=1, name="crelu"), name="td")
    stats = diagnostics.activation_stats(keras.Model(inputs, wrapper(inputs)), frames)
    assert stats["td/crelu"]["units"] == 4
    assert stats["td/crelu"]["dead_fraction"] == stats["td/crelu"]["inactive_fraction"] == 0.5


class FeedForward(keras.layers.Layer):
    """A user's block: Dense(relu) then a linear Dense back to the input width."""

    def __init__(self, width=4, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.relu  # As keras-hub's blocks keep theirs.
        self.hidden = keras.layers.Dense(width, activation="relu", name="hidden")
        self.out = keras.layers.Dense(3, name="out")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.out.build((*input_shape[:-1], self.hidden.units))

    def call(self, x):
        return x + self.out(self.hidden(x))


def test_a_block_is_measured_on_its_inner_activation_not_its_output():
    block = FeedForward(name="block")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, block(inputs))
    assert not diagnostics.is_activation_layer(block)  # It has `activation`, applied inside.
    kernel, bias = block.hidden.get_weights()
    block.hidden.set_weights([np.zeros_like(kernel), np.full_like(bias, -1.0)])  # All dead.
    call_before = keras.layers.Layer.__call__
    stats = diagnostics.activation_stats(model, INPUTS)
    assert keras.layers.Layer.__call__ is call_before
    assert block.hidden.activation is keras.activations.relu
    assert stats == {
        "block/hidden": {
            "units": 4,
            "dead_fraction": 1.0,
            "inactive_fraction": 1.0,
            "sparsity": 1.0,
        }
    }


def test_a_block_called_twice_and_a_nested_subclassed_model_are_entered():
    class Head(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.act = keras_relu.ReLU(name="act")

        def call(self, x):
            return self.act(x - 1.0)

    block, head = FeedForward(name="block"), Head(name="head")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, head(block(block(inputs))))
    stats = diagnostics.activation_stats(model, INPUTS)
    assert list(stats) == ["block/hidden", "block@1/hidden", "head/act"]
    outputs = keras.ops.convert_to_numpy(model(INPUTS))
    assert stats["head/act"]["sparsity"] == np.mean(outputs == 0)


def test_a_transformer_encoder_with_dead_feedforward_units_reports_them():
    keras_hub = pytest.importorskip("keras_hub")
    encoder = keras_hub.layers.TransformerEncoder(8, 2, activation="relu", name="encoder")
    inputs = keras.Input((5, 4))
    model = keras.Model(inputs, encoder(inputs))
    intermediate = encoder._feedforward_intermediate_dense
    kernel, bias = intermediate.get_weights()
    intermediate.set_weights([np.zeros_like(kernel), np.full_like(bias, -1.0)])
    sequences = np.random.default_rng(3).normal(size=(4, 5, 4)).astype("float32")
    stats = diagnostics.activation_stats(model, sequences)
    assert list(stats) == ["encoder/feedforward_intermediate_dense"]
    assert stats["encoder/feedforward_intermediate_dense"] == {
        "units": 8,
        "dead_fraction": 1.0,
        "inactive_fraction": 1.0,
        "sparsity": 1.0,
    }


def test_a_transformer_encoder_leaves_out_padding():
    keras_hub = pytest.importorskip("keras_hub")
    encoder = keras_hub.layers.TransformerEncoder(8, 2, activation="relu", name="encoder")
    tokens = keras.Input((5,), dtype="int32")
    model = keras.Model(tokens, encoder(keras.layers.Embedding(10, 4, mask_zero=True)(tokens)))
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]])
    path = "encoder/feedforward_intermediate_dense"
    stats = diagnostics.activation_stats(model, ids)[path]
    probe = diagnostics.dead_units._Probe(model)
    assert path in probe.masks  # The encoder's input mask.
    outputs, inputs = probe.model(ids, training=False)
    y = keras.ops.convert_to_numpy(outputs[path])
    x = keras.ops.convert_to_numpy(inputs[path])
    real = ids != 0
    assert stats["sparsity"] == pytest.approx(np.mean(y[real] == 0))
    assert stats["dead_fraction"] == np.mean(np.all(y[real] == 0, axis=0))
    assert stats["inactive_fraction"] == np.mean(np.all(x[real] <= 0, axis=0))


def test_activation_layers_a_block_calls_directly_are_reported_unreached():
    class Direct(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(4, activation="relu", name="hidden")
            self.visible = keras.layers.Dense(4, activation="relu", name="visible")

        def build(self, input_shape):
            self.hidden.build(input_shape)
            self.visible.build(input_shape)

        def call(self, x):
            return self.hidden.call(x) + self.visible(x)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Direct(name="direct")(inputs))
    with pytest.warns(diagnostics.UnmeasuredActivationWarning, match="direct/hidden"):
        stats = diagnostics.activation_stats(model, INPUTS)
    assert list(stats) == ["direct/visible"]


def probe_with(value, row=17, size=256):
    """A 256-example probe of positive inputs with `value` in one entry of one row."""
    probe = np.random.default_rng(3).uniform(0.5, 1.5, size=(size, 3)).astype("float32")
    probe[row, 1] = value
    return probe


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("layer", ["inline", "relu_layer"])
def test_a_non_finite_probe_output_raises_instead_of_0_dead(value, layer):
    # Before: NaN != 0 counted every unit as firing, so one NaN example gave 0% dead.
    dense = dense_with_dead_unit(activation="relu" if layer == "inline" else None)
    after = [] if layer == "inline" else [keras.layers.ReLU(name="act")]
    stack = [keras.Input((3,)), dense, *after]
    model = keras.Sequential(stack)
    place = "dense" if layer == "inline" else "act"
    assert diagnostics.activation_stats(model, probe_with(1.0))[place]["dead_fraction"] == 0.25
    with pytest.raises(ValueError, match=rf"non-finite .* '{place}' \(1 of 256 examples\)"):
        diagnostics.activation_stats(model, probe_with(value))
    # Batches: the count runs over the whole probe.
    with pytest.raises(ValueError, match=r"\(1 of 256 examples\)"):
        diagnostics.activation_stats(model, probe_with(value, row=200), batch_size=64)


def test_a_non_finite_value_at_a_masked_position_is_left_out():
    # Padding (token 0) embeds to NaN: masked, so not measured; a real token's NaN is.
    embedding = keras.layers.Embedding(10, 2, mask_zero=True, name="embedding")
    dense = keras.layers.Dense(3, activation="relu", name="dense")
    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, dense(embedding(inputs)))
    table = np.ones((10, 2), "float32")
    table[0] = np.nan
    embedding.set_weights([table])
    dense.set_weights([np.array([[1, 1, -1], [1, 1, -1]], "float32"), np.zeros(3, "float32")])
    tokens = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [6, 7, 8, 9, 1]])
    stats = diagnostics.activation_stats(model, tokens)["dense"]
    assert stats["dead_fraction"] == pytest.approx(1 / 3)
    table[7] = np.nan
    embedding.set_weights([table])
    with pytest.raises(ValueError, match=r"'dense' \(1 of 3 examples\)"):
        diagnostics.activation_stats(model, tokens)


def test_monitor_warns_and_logs_nan_for_a_non_finite_probe():
    model = keras.Sequential([keras.Input((3,)), dense_with_dead_unit()])
    monitor = diagnostics.DeadUnitMonitor(probe_with(np.nan), warn_above=0.2)
    monitor.set_model(model)
    logs = {}
    with pytest.warns(diagnostics.NonFiniteProbeWarning, match=r"Epoch 3: .*'dense' \(1 of 256"):
        monitor.on_epoch_end(2, logs)
    for key in ("dead_fraction", "dead_fraction/dense", "inactive_fraction", "sparsity/dense"):
        assert np.isnan(logs[key]), key
    # Training goes on with the monitor in it.
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(diagnostics.NonFiniteProbeWarning):
        history = model.fit(INPUTS, np.zeros((24, 4)), epochs=1, verbose=0, callbacks=[monitor])
    assert np.isnan(history.history["dead_fraction"][0])
