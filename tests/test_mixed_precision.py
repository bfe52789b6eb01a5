"""Mixed precision: every layer computes in float16 / bfloat16, keeps its
variables (PReLU alpha, learned Swish beta) in float32, and trains without NaN."""

import keras
import numpy as np
import pytest

import keras_relu

# Tolerances for a low-precision result against the float32 one: float16 has an
# 11-bit significand, bfloat16 an 8-bit one.
POLICIES = {"mixed_float16": ("float16", 4e-3), "mixed_bfloat16": ("bfloat16", 2e-2)}


@pytest.fixture(params=list(POLICIES))
def policy(request):
    """Sets the global policy; conftest's autouse fixture restores float32."""
    keras.config.set_dtype_policy(request.param)
    return request.param


def _inputs(shape=(4, 3, 5)):
    x = 3.0 * np.random.default_rng(0).standard_normal(shape)
    x.flat[::6] = 0.0
    return x.astype("float32")


def _make(variant, **kwargs):
    if variant.name == "rrelu":
        kwargs.setdefault("seed", 3)
    return variant.layer(**kwargs)


def _float32_twin(layer):
    """The same layer, float32 throughout, with the same weight values."""
    twin = type(layer).from_config({**layer.get_config(), "dtype": "float32"})
    if not twin.built:
        twin.build((4, 3, 5))
    twin.set_weights(layer.get_weights())
    return twin


def _layers_under_test(variant):
    layers = [_make(variant)]
    if variant.name == "swish":
        layers.append(_make(variant, beta=1.3, learn_beta=True))
    if variant.name == "gelu":
        layers.append(_make(variant, approximate=True))
    return layers


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_layer_computes_in_low_precision(variant, policy, training):
    compute_dtype, tolerance = POLICIES[policy]
    x = _inputs()
    for layer in _layers_under_test(variant):
        assert layer.compute_dtype == compute_dtype
        assert layer.variable_dtype == "float32"
        kwargs = {"training": training} if variant.name == "rrelu" else {}
        y = layer(x, **kwargs)
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
        y = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
        assert np.all(np.isfinite(y))
        for weight in layer.weights:
            assert weight.dtype == "float32", weight.path
        if variant.name == "rrelu" and training:
            # Random slopes: check the bounds rather than the values.
            negative = x < 0
            slopes = y[negative] / x[negative]
            assert np.all(slopes >= layer.lower - tolerance)
            assert np.all(slopes <= layer.upper + tolerance)
            np.testing.assert_allclose(y[~negative], x[~negative], rtol=tolerance)
            continue
        # The value is the float32 value (of the low-precision input) within the
        # low precision's rounding.
        x_low = keras.ops.convert_to_numpy(
            keras.ops.cast(keras.ops.cast(x, compute_dtype), "float32")
        )
        want = keras.ops.convert_to_numpy(_float32_twin(layer)(x_low))
        np.testing.assert_allclose(y, want, rtol=tolerance, atol=tolerance)


def test_variables_stay_float32(policy):
    prelu = keras_relu.PReLU()
    prelu.build((None, 3, 5))
    swish = keras_relu.Swish(learn_beta=True)
    for layer, name in ((prelu, "alpha"), (swish, "beta")):
        (weight,) = layer.trainable_weights
        assert weight.name == name
        assert weight.dtype == "float32"
        assert keras.backend.standardize_dtype(weight.value.dtype) == "float32"


def test_model_trains_without_nan(policy):
    compute_dtype, _ = POLICIES[policy]
    activations = [_make(v) for v in keras_relu.VARIANTS] + [keras_relu.Swish(learn_beta=True)]
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8)(inputs)
    merged = keras.layers.Concatenate()([layer(hidden) for layer in activations])
    # The loss is computed in float32, as the Keras mixed-precision guide advises.
    outputs = keras.layers.Dense(1, dtype="float32")(merged)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)).astype("float32")
    y = rng.standard_normal((32, 1)).astype("float32")
    initial = [np.array(w) for w in model.get_weights()]
    losses = [float(model.train_on_batch(x, y)) for _ in range(4)]

    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0]
    assert keras.backend.standardize_dtype(merged.dtype) == compute_dtype
    for variable, start in zip(model.weights, initial, strict=True):
        value = np.array(variable.numpy(), dtype="float32")
        assert np.all(np.isfinite(value)), variable.path
        if variable.trainable:
            assert variable.dtype == "float32", variable.path
            assert not np.allclose(value, start), f"{variable.path} did not train"
