"""Compiled (XLA) training with every layer: `model.compile(jit_compile=True)`.

On TensorFlow and JAX the train step is compiled by XLA, which has no fallback to
Python: an op XLA cannot compile fails the test. The compiled run must give the
eager run's losses and weights, from the same initial weights, within float32
tolerance.
"""

import keras
import numpy as np
import pytest

import keras_relu

pytestmark = pytest.mark.skipif(
    keras.config.backend() not in ("tensorflow", "jax"),
    reason="jit_compile=True means XLA only on the TensorFlow and JAX backends; on torch "
    "it selects torch.compile (TorchDynamo), which the package does not claim",
)

STEPS = 3
BATCH = 16
FEATURES = 6


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    y = rng.standard_normal((BATCH, 1)).astype("float32")
    return x, y


def _rrelu():
    if keras.config.backend() == "tensorflow":
        # TensorFlow's stateless RNG picks another algorithm under XLA, so a seeded
        # draw differs between eager and compiled runs (JAX's does not). A fixed
        # slope (lower == upper) still runs the training-mode draw under XLA but
        # makes the two runs comparable; test_rrelu_randomness covers the draws.
        return keras_relu.RReLU(lower=0.2, upper=0.2, seed=7)
    return keras_relu.RReLU(seed=7)


def _layer(variant):
    return _rrelu() if variant.name == "rrelu" else variant.layer()


def _every_layer():
    """One of each variant, plus the learned-beta Swish and the tanh GELU."""
    layers = [_layer(variant) for variant in keras_relu.VARIANTS]
    return layers + [keras_relu.Swish(learn_beta=True), keras_relu.GELU(approximate=True)]


def _model(activation_layers):
    # The activations side by side on one hidden layer: each gets inputs of both
    # signs and passes gradients back to trainable weights, and the compiled graph
    # stays shallow (quick to compile).
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(8)(inputs)
    branches = [layer(hidden) for layer in activation_layers]
    merged = branches[0] if len(branches) == 1 else keras.layers.Concatenate()(branches)
    return keras.Model(inputs, keras.layers.Dense(1)(merged))


def _train(model, **compile_kwargs):
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", **compile_kwargs)
    x, y = _data()
    losses = [float(model.train_on_batch(x, y)) for _ in range(STEPS)]
    return losses, [np.array(w) for w in model.get_weights()]


def _check_compiled_matches_eager(make_layers):
    eager = _model(make_layers())
    compiled = _model(make_layers())
    compiled.set_weights(eager.get_weights())
    initial = [np.array(w) for w in eager.get_weights()]

    eager_losses, eager_weights = _train(eager, run_eagerly=True)
    compiled_losses, compiled_weights = _train(compiled, jit_compile=True)

    # Keras silently drops jit_compile for a model with a layer that says it
    # cannot be compiled; none of ours may.
    assert compiled.jit_compile is True
    assert all(layer.supports_jit for layer in compiled._flatten_layers())
    assert np.all(np.isfinite(compiled_losses))
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-5, atol=1e-6)
    for got, want in zip(compiled_weights, eager_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Training happened: every trainable weight moved (PReLU alpha, Swish beta included).
    for variable, start, end in zip(compiled.weights, initial, compiled_weights, strict=True):
        if variable.trainable:
            assert not np.allclose(start, end), f"{variable.path} did not train"


def test_every_layer_in_one_model():
    _check_compiled_matches_eager(_every_layer)


def test_each_layer(variant):
    _check_compiled_matches_eager(lambda: [_layer(variant)])
