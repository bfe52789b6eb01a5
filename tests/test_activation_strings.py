"""`activation="crelu"` in Keras layers: declared and real shapes agree, misuse fails."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu
from keras_relu import _keras_integration


def test_crelu_resolves_and_keras_names_keep_keras_functions():
    assert keras.activations.get("crelu") is keras_relu.activations.crelu
    for name in ("relu", "leaky_relu", "elu", "selu", "relu6", "gelu", "silu", "swish"):
        assert keras.activations.get(name).__module__.startswith("keras."), name


def test_install_is_idempotent():
    before = keras.layers.Dense.compute_output_shape
    _keras_integration.install(
        {"crelu": keras_relu.activations.crelu}, keras_relu.activations.crelu, keras_relu.CReLU
    )
    assert keras.layers.Dense.compute_output_shape is before


def test_install_fails_loudly_when_keras_moves_its_table(monkeypatch):
    from keras.src import activations as keras_activations

    monkeypatch.delattr(keras_activations, "ALL_OBJECTS_DICT")
    with pytest.raises(_keras_integration.KerasIntegrationError, match="ALL_OBJECTS_DICT"):
        _keras_integration.install(
            {"crelu": keras_relu.activations.crelu}, keras_relu.activations.crelu, keras_relu.CReLU
        )


def _assert_shapes_agree(model, layer, x, channels):
    """Declared shape, compute_output_shape, runtime shape and the next layer agree."""
    assert layer.output.shape[-1] == channels
    assert layer.compute_output_shape(layer.input.shape)[-1] == channels
    probe = keras.Model(model.inputs[0], layer.output)
    assert ops.shape(probe(x))[-1] == channels


def test_dense_crelu_sequential_trains_saves_and_loads(tmp_path):
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(8, activation="crelu"), keras.layers.Dense(3)]
    )
    dense, head = model.layers
    x = np.random.default_rng(0).normal(size=(32, 10)).astype("float32")
    _assert_shapes_agree(model, dense, x, 16)
    assert tuple(head.kernel.shape) == (16, 3)
    model.compile("adam", "mse")
    model.fit(x, np.zeros((32, 3)), epochs=1, verbose=0)
    path = tmp_path / "dense_crelu.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.layers[0].activation is keras_relu.activations.crelu
    np.testing.assert_allclose(ops.convert_to_numpy(restored(x)), ops.convert_to_numpy(model(x)))


@pytest.mark.parametrize(
    "make_layer, input_shape, channels",
    [
        (lambda: keras.layers.Conv2D(6, 3, activation="crelu"), (8, 8, 3), 12),
        (lambda: keras.layers.Conv1D(6, 3, activation="crelu"), (8, 3), 12),
        (lambda: keras.layers.Conv2DTranspose(6, 3, activation="crelu"), (8, 8, 3), 12),
        (lambda: keras.layers.SeparableConv2D(6, 3, activation="crelu"), (8, 8, 3), 12),
        (lambda: keras.layers.DepthwiseConv2D(3, activation="crelu"), (8, 8, 3), 6),
        (lambda: keras.layers.EinsumDense("ab,bc->ac", 5, activation="crelu"), (4,), 10),
        (lambda: keras.layers.Activation("crelu"), (7,), 14),
    ],
    ids=["conv2d", "conv1d", "conv2d_transpose", "separable", "depthwise", "einsum", "activation"],
)
def test_crelu_string_in_functional_models(make_layer, input_shape, channels):
    inputs = keras.Input(input_shape)
    layer = make_layer()
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    x = np.random.default_rng(1).normal(size=(2, *input_shape)).astype("float32")
    _assert_shapes_agree(model, layer, x, channels)
    assert ops.shape(model(x))[-1] == 2


def test_activation_layer_with_crelu_string_computes_crelu():
    x = np.random.default_rng(2).normal(size=(3, 5)).astype("float32")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(keras.layers.Activation("crelu")(x)),
        ops.convert_to_numpy(keras_relu.activations.crelu(x)),
    )


def test_summary_shows_the_doubled_width():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="crelu")]
    )
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    assert "(None, 6, 6, 8)" in "\n".join(lines)


def test_time_distributed_dense_declares_the_doubled_width():
    layer = keras.layers.TimeDistributed(keras.layers.Dense(4, activation="crelu"))
    outputs = layer(keras.Input((5, 3)))
    assert tuple(outputs.shape) == (None, 5, 8)


@pytest.mark.parametrize(
    "make_layer, message",
    [
        (lambda: keras.layers.SimpleRNN(4, activation="crelu"), "SimpleRNNCell.*units"),
        (lambda: keras.layers.LSTM(4, activation="crelu"), "LSTMCell.*units"),
        (lambda: keras.layers.GRU(4, recurrent_activation="crelu"), "GRUCell.*units"),
        (lambda: keras.layers.ConvLSTM2D(4, 3, activation="crelu"), "ConvLSTMCell.*units"),
        (
            lambda: keras.layers.Conv2D(4, 3, activation="crelu", data_format="channels_first"),
            "channels_first",
        ),
    ],
    ids=["simple_rnn", "lstm", "gru", "conv_lstm", "channels_first"],
)
def test_crelu_where_width_cannot_double_fails_at_construction(make_layer, message):
    with pytest.raises(ValueError, match=message + r".*keras_relu\.layers\.CReLU"):
        make_layer()


def test_other_activations_leave_declared_shapes_alone():
    layer = keras.layers.Dense(8, activation="relu")
    assert layer.compute_output_shape((None, 3)) == (None, 8)
