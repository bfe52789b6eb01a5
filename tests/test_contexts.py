"""The functions and layers where Keras users call them from: traced functions, the
functional API, forward-mode autodiff and vmap, export, CReLU in other layers, masks."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import keras_relu
from keras_relu import activations

BACKEND = keras.config.backend()
needs_tensorflow = pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow context")
needs_jax = pytest.mark.skipif(BACKEND != "jax", reason="a JAX context")
needs_torch = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch context")

X = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
X[0, 0] = 0.0


def numpy_crelu(x, axis=-1):
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=axis)


def numpy_crelu_jacobian(x):
    """d crelu(x)[i, k] / d x[i, j] for a (batch, channels) x, axis -1."""
    batch, channels = x.shape
    jacobian = np.zeros((batch, 2 * channels, batch, channels), "float32")
    for i in range(batch):
        for j in range(channels):
            jacobian[i, j, i, j] = float(x[i, j] > 0)
            jacobian[i, channels + j, i, j] = -float(x[i, j] < 0)
    return jacobian


# 1. Inside tf.function on a tensor made outside it -------------------------------------


@needs_tensorflow
@pytest.mark.parametrize("name", ["prelu", "crelu", "gelu"])
def test_layer_in_tf_function_on_a_captured_eager_tensor(name):
    import tensorflow as tf

    x = tf.constant(X)
    layer = keras_relu.get(name)
    eager = ops.convert_to_numpy(layer(x))
    traced = tf.function(lambda: layer(x))()
    np.testing.assert_allclose(traced.numpy(), eager, rtol=1e-6, atol=1e-6)


@needs_tensorflow
def test_prelu_alpha_gets_its_gradient_in_tf_function_on_a_captured_tensor():
    import tensorflow as tf

    x = tf.constant(X)
    layer = keras_relu.PReLU()
    layer.build(x.shape)

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            y = layer(x)
        return tape.gradient(y, layer.alpha)

    expected = np.minimum(X, 0).sum(axis=0)  # d sum(prelu) / d alpha = x where x <= 0
    np.testing.assert_allclose(gradients().numpy(), expected, rtol=1e-6)


@needs_tensorflow
def test_traced_forms_are_chosen_by_the_context_not_the_input():
    import tensorflow as tf

    x = tf.constant(X)
    ops_in_graph = set()

    @tf.function
    def gelu():
        return activations.gelu(x)

    for op in gelu.get_concrete_function().graph.get_operations():
        ops_in_graph.add(op.type)
    assert "Erf" in ops_in_graph  # the traced (exportable) form, not tf.nn.gelu's Erfc
    assert "Erfc" not in ops_in_graph


# 2. The functions on symbolic inputs ---------------------------------------------------


SYMBOLIC_CASES = {
    "crelu": (lambda t: activations.crelu(t), lambda x: numpy_crelu(x), 8),
    "crelu_axis1": (
        lambda t: activations.crelu(t, axis=1),
        lambda x: numpy_crelu(x, axis=1),
        8,
    ),
    "prelu": (
        lambda t: activations.prelu(t, np.full((4,), 0.25, "float32")),
        lambda x: np.where(x > 0, x, 0.25 * x),
        4,
    ),
    "leaky_relu": (
        lambda t: activations.leaky_relu(t, negative_slope=0.1),
        lambda x: np.where(x > 0, x, 0.1 * x),
        4,
    ),
    "rrelu": (
        lambda t: activations.rrelu(t),
        lambda x: np.where(x > 0, x, (1 / 8 + 1 / 3) / 2 * x),
        4,
    ),
    "relu": (lambda t: activations.relu(t, max_value=1.0), lambda x: np.clip(x, 0, 1), 4),
}


@pytest.mark.parametrize("case", sorted(SYMBOLIC_CASES))
def test_functions_build_functional_models(case):
    function, reference, width = SYMBOLIC_CASES[case]
    inputs = keras.Input((4,))
    outputs = function(inputs)
    assert tuple(outputs.shape) == (None, width)
    model = keras.Model(inputs, outputs)
    for batch in (X, X[:1]):  # the batch size is not fixed into the graph
        np.testing.assert_allclose(
            ops.convert_to_numpy(model(batch)), reference(batch), rtol=1e-6, atol=1e-7
        )


def test_prelu_with_a_symbolic_alpha_by_keyword():
    inputs, slopes = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([inputs, slopes], activations.prelu(inputs, alpha=slopes))
    alpha = np.full((3, 4), 0.5, "float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(model([X, alpha])), np.where(X > 0, X, 0.5 * X), rtol=1e-6
    )


def test_functional_model_of_functions_saves_and_loads(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(activations.crelu(activations.gelu(inputs), axis=1))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "functions.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(X)), ops.convert_to_numpy(model(X)), rtol=1e-6
    )


def test_activation_call_refuses_unknown_functions_from_a_config():
    with pytest.raises(ValueError, match="function='eval'"):
        activations.ActivationCall.from_config({"function": "eval", "arguments": {}})


# 3. Forward-mode autodiff and vmap -----------------------------------------------------


@needs_jax
def test_crelu_forward_and_reverse_mode_on_jax():
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(X)
    expected = numpy_crelu_jacobian(X)
    np.testing.assert_array_equal(np.asarray(jax.jacfwd(activations.crelu)(x)), expected)
    np.testing.assert_array_equal(np.asarray(jax.jacrev(activations.crelu)(x)), expected)
    _, tangent = jax.jvp(activations.crelu, (x,), (jnp.ones_like(x),))
    expected_tangent = np.concatenate([X > 0, -1.0 * (X < 0)], axis=-1).astype("float32")
    np.testing.assert_array_equal(np.asarray(tangent), expected_tangent)
    np.testing.assert_array_equal(np.asarray(jax.vmap(activations.crelu)(x)), numpy_crelu(X))


@needs_jax
def test_jvp_through_a_dense_layer_with_crelu_on_jax():
    import jax
    import jax.numpy as jnp

    dense = keras.layers.Dense(3, activation="crelu")
    dense.build((None, 4))
    x = jnp.asarray(X)
    _, tangent = jax.jvp(dense, (x,), (jnp.ones_like(x),))
    jacobian = jax.jacrev(dense)(x)  # (3, 6, 3, 4)
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(jacobian).sum(axis=(2, 3)), 1e-5)


@needs_torch
def test_crelu_under_torch_func_transforms():
    import torch

    x = torch.tensor(X)
    expected = numpy_crelu_jacobian(X)
    np.testing.assert_array_equal(torch.func.jacfwd(activations.crelu)(x).numpy(), expected)
    np.testing.assert_array_equal(torch.func.jacrev(activations.crelu)(x).numpy(), expected)
    np.testing.assert_array_equal(torch.func.vmap(activations.crelu)(x).numpy(), numpy_crelu(X))
    _, tangent = torch.func.jvp(activations.crelu, (x,), (torch.ones_like(x),))
    expected_tangent = np.concatenate([X > 0, -1.0 * (X < 0)], axis=-1).astype("float32")
    np.testing.assert_array_equal(tangent.numpy(), expected_tangent)


# 4. model.export() with CReLU on JAX ---------------------------------------------------


@needs_jax
def test_export_with_crelu_on_jax(tmp_path):
    pytest.importorskip("tensorflow")  # JAX export goes through jax2tf
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="crelu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras_relu.CReLU()(hidden)))
    path = str(tmp_path / "served")
    model.export(path, format="tf_saved_model", verbose=False)
    expected = ops.convert_to_numpy(model(X))
    # Loaded in a TensorFlow process of its own, as a server would.
    script = (
        "import sys, numpy as np, tensorflow as tf; "
        "served = tf.saved_model.load(sys.argv[1]); "
        "x = np.load(sys.argv[2]); np.save(sys.argv[2], served.serve(x).numpy())"
    )
    data = tmp_path / "x.npy"
    np.save(data, X)
    subprocess.run([sys.executable, "-c", script, path, str(data)], check=True)
    np.testing.assert_allclose(np.load(data), expected, rtol=1e-5, atol=1e-6)


# 5. A CReLU layer passed as activation= ------------------------------------------------


@pytest.mark.parametrize(
    "make_layer, input_shape, output_shape",
    [
        (lambda: keras.layers.Dense(3, activation=keras_relu.CReLU()), (4,), (None, 6)),
        (
            lambda: keras.layers.Conv2D(2, 3, activation=keras_relu.CReLU()),
            (6, 6, 1),
            (None, 4, 4, 4),
        ),
        (lambda: keras.layers.Activation(keras_relu.CReLU()), (5,), (None, 10)),
        (
            lambda: keras.layers.Conv1D(2, 3, activation=keras_relu.CReLU(axis=1)),
            (7, 1),
            (None, 10, 2),
        ),
    ],
    ids=["dense", "conv2d", "activation", "conv1d_time_axis"],
)
def test_crelu_layer_as_activation_declares_its_shape(make_layer, input_shape, output_shape):
    inputs = keras.Input(input_shape)
    layer = make_layer()
    hidden = layer(inputs)
    assert tuple(hidden.shape) == output_shape
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    x = np.random.default_rng(1).normal(size=(2, *input_shape)).astype("float32")
    assert tuple(ops.shape(keras.Model(inputs, hidden)(x))) == (2, *output_shape[1:])
    assert tuple(ops.shape(model(x))) == (2, *output_shape[1:-1], 2)


def test_recurrent_cells_refuse_a_crelu_layer():
    with pytest.raises(ValueError, match=r"SimpleRNNCell.*units.*keras_relu\.layers\.CReLU"):
        keras.layers.SimpleRNN(4, activation=keras_relu.CReLU())


# 6. activation="crelu" in layers that fix their own widths -----------------------------


class FixedWidthBlock(keras.layers.Layer):
    """A user's block in keras-hub's style: it sizes its second Dense itself."""

    def __init__(self, hidden, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.expand = keras.layers.Dense(hidden, activation=self.activation)
        self.project = keras.layers.Dense(4)

    def call(self, x):
        return self.project(self.expand(x))


def test_other_layers_refuse_crelu_at_construction():
    with pytest.raises(ValueError, match=r"FixedWidthBlock.*keras_relu\.layers\.CReLU"):
        FixedWidthBlock(6, activation="crelu")
    FixedWidthBlock(6, activation="relu")  # other activations are left alone


def test_keras_hub_transformer_encoder_refuses_crelu():
    keras_hub = pytest.importorskip("keras_hub")
    with pytest.raises(ValueError, match=r"TransformerEncoder.*keras_relu\.layers\.CReLU"):
        keras_hub.layers.TransformerEncoder(intermediate_dim=6, num_heads=2, activation="crelu")
    encoder = keras_hub.layers.TransformerEncoder(intermediate_dim=6, num_heads=2)
    assert tuple(ops.shape(encoder(np.zeros((1, 3, 4), "float32")))) == (1, 3, 4)


# 8. CReLU on a masked sequence ---------------------------------------------------------


def test_crelu_on_the_time_axis_doubles_the_mask():
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
    x[0, 3:] = 0.0  # the first sequence has 3 steps
    inputs = keras.Input((5, 3))
    doubled = keras_relu.CReLU(axis=1)(keras.layers.Masking(0.0)(inputs))
    lstm = keras.layers.LSTM(2)
    model = keras.Model(inputs, lstm(doubled))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    expected = lstm(numpy_crelu(x, axis=1), mask=np.concatenate([mask, mask], axis=1))
    np.testing.assert_allclose(
        ops.convert_to_numpy(model(x)), ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6
    )


def test_crelu_on_the_channel_axis_keeps_the_mask():
    mask = ops.convert_to_tensor(np.array([[1, 0, 1]], bool))
    x = ops.ones((1, 3, 2))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(keras_relu.CReLU().compute_mask(x, mask)), [[1, 0, 1]]
    )
    doubled = keras_relu.CReLU(axis=1).compute_mask(x, mask)
    np.testing.assert_array_equal(ops.convert_to_numpy(doubled), [[1, 0, 1, 1, 0, 1]])
