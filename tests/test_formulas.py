"""Every layer against a NumPy float64 reference of its formula and derivative."""

import keras
import numpy as np
import pytest
import references as ref
from keras import ops

import keras_relu

EDGES = np.array(
    [0.0, -0.0, 6.0, 5.999, 6.001, 1e-30, -1e-30, 1e-45, -1e-45, 3e38, -3e38, 50.0, -50.0, 1.0],
    dtype="float32",
)


def _case(name, kwargs, forward, derivative):
    case_id = "-".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
    return pytest.param(name, kwargs, forward, derivative, id=f"{name}-{case_id}")


# (variant name, layer kwargs, reference f, reference f' or None)
CASES = [
    _case("relu", {}, ref.relu, ref.d_relu),
    _case(
        "relu",
        {"negative_slope": 0.1, "max_value": 4.0, "threshold": 0.5},
        lambda x: ref.relu(x, 0.1, 4.0, 0.5),
        None,
    ),
    _case("leaky_relu", {}, ref.leaky_relu, ref.d_leaky_relu),
    _case(
        "leaky_relu",
        {"negative_slope": 0.3},
        lambda x: ref.leaky_relu(x, 0.3),
        lambda x: ref.d_leaky_relu(x, 0.3),
    ),
    _case("prelu", {}, lambda x: ref.leaky_relu(x, 0.25), lambda x: ref.d_leaky_relu(x, 0.25)),
    _case(
        "rrelu",
        {"lower": 0.1, "upper": 0.3},
        lambda x: ref.leaky_relu(x, 0.2),
        lambda x: ref.d_leaky_relu(x, 0.2),
    ),
    _case("elu", {}, ref.elu, ref.d_elu),
    _case("elu", {"alpha": 0.5}, lambda x: ref.elu(x, 0.5), lambda x: ref.d_elu(x, 0.5)),
    _case("selu", {}, ref.selu, lambda x: ref.SELU_SCALE * ref.d_elu(x, ref.SELU_ALPHA)),
    _case("relu6", {}, ref.relu6, ref.d_relu6),
    _case("crelu", {}, ref.crelu, lambda x: np.sign(x).astype(np.float64)),
    _case("gelu", {}, ref.gelu, ref.d_gelu),
    _case("gelu", {"approximate": True}, lambda x: ref.gelu(x, True), None),
    _case("swish", {}, ref.swish, ref.d_swish),
    _case("swish", {"beta": 1.7}, lambda x: ref.swish(x, 1.7), lambda x: ref.d_swish(x, 1.7)),
]


def _inputs():
    rng = np.random.default_rng(0)
    return np.concatenate([EDGES, rng.normal(scale=4.0, size=500).astype("float32")])


@pytest.mark.parametrize("name, kwargs, forward, _", CASES)
def test_layer_matches_float64_reference(name, kwargs, forward, _):
    x = _inputs()[None, :]  # (batch, channels)
    layer = keras_relu.get(name, **kwargs)
    expected = forward(x.astype("float64"))
    actual = ops.convert_to_numpy(layer(x))
    # Piecewise-linear variants are exact up to denormals (CPUs may flush them to
    # zero); the exp/erf ones get float32 rounding near 0 (tf.nn.elu computes
    # exp(x) - 1, so elu(-1e-30) is 0).
    atol = 1.2e-38 if name in ("relu", "leaky_relu", "prelu", "rrelu", "relu6", "crelu") else 1e-7
    if name == "gelu":
        atol = 1e-6  # 1 + erf(.) or 1 + tanh(.) cancels for x << 0 in float32 (torch, tanh form).
    np.testing.assert_allclose(actual, expected, rtol=3e-6, atol=atol)


STATELESS_CASES = [case for case in CASES if keras_relu.variant(case.values[0]).by_name]


@pytest.mark.parametrize("name, kwargs, forward, _", STATELESS_CASES)
def test_function_matches_layer(name, kwargs, forward, _):
    variant = keras_relu.variant(name)
    x = _inputs()[None, :]
    np.testing.assert_array_equal(
        ops.convert_to_numpy(variant.function(x, **kwargs)),
        ops.convert_to_numpy(variant.layer(**kwargs)(x)),
    )


GRADIENT_CASES = [case for case in CASES if case.values[3] is not None]


@pytest.mark.parametrize("name, kwargs, _, derivative", GRADIENT_CASES)
def test_gradient_matches_reference_derivative(name, kwargs, _, derivative):
    rng = np.random.default_rng(1)
    kinks = [0.0, -0.0, 6.0, 1.0, -1.0]
    if name == "selu" and keras.config.backend() == "tensorflow":
        kinks = kinks[2:]  # tf.nn.selu's kernel takes the right derivative at 0: see below.
    x = np.concatenate([kinks, rng.normal(scale=3.0, size=200)]).astype("float32")[None, :]
    layer = keras_relu.get(name, **kwargs)
    actual = ref.input_gradient(layer, x)
    np.testing.assert_allclose(actual, derivative(x.astype("float64")), rtol=1e-5, atol=1e-6)


def test_selu_derivative_at_zero_follows_the_backend_kernel():
    gradient = ref.input_gradient(keras_relu.SELU(), np.zeros((1, 1), "float32"))[0, 0]
    # Documented in activations.selu: TensorFlow's fused kernel uses the right limit.
    if keras.config.backend() == "tensorflow":
        expected = ref.SELU_SCALE
    else:
        expected = ref.SELU_SCALE * ref.SELU_ALPHA
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_prelu_alpha_gradient_is_x_below_zero_per_channel():
    x = np.array([[[-1.0, 2.0], [-3.0, -4.0], [0.0, 5.0]]], "float32")  # (1, 3, 2)
    layer = keras_relu.PReLU()
    layer.build(x.shape)
    alpha = layer.alpha

    def total(a):
        return ops.sum(keras_relu.activations.prelu(x, a))

    gradient = ref.input_gradient(total, ops.convert_to_numpy(alpha))
    # d/d alpha_c = sum of x over x <= 0 in channel c: channel 0: -1 - 3 + 0, channel 1: -4.
    np.testing.assert_allclose(gradient, [[-4.0, -4.0]])


@pytest.mark.parametrize(
    "alpha",
    [[0.25, 0.5], [-0.3, 0.2], [0.7, 0.1], [0.0, 0.25], [1.5, -2.0]],
    ids=["fast-path", "negative", "above-half", "zero", "outside-0-1"],
)
def test_prelu_matches_the_formula_for_any_slopes(alpha):
    # The eager TensorFlow path takes a shortcut for slopes in (0, 1/2]; every other
    # slope must give x if x > 0 else alpha * x all the same, with that derivative.
    x = np.array([[-2.0, -1.5], [0.0, 0.0], [3.0, 4.0], [-1e-3, 1e-3]], "float32")
    alpha = np.array(alpha, "float32")
    got = ops.convert_to_numpy(keras_relu.activations.prelu(x, alpha))
    np.testing.assert_allclose(got, np.where(x > 0, x, alpha * x), rtol=1e-6)
    gradient = ref.input_gradient(lambda t: keras_relu.activations.prelu(t, alpha), x)
    np.testing.assert_allclose(gradient, np.where(x > 0, 1.0, alpha + 0 * x), rtol=1e-6)


def _compiled_prelu_gradients(x, alpha, upstream):
    """(d x, d alpha) of sum(prelu(x, alpha) * upstream), traced where the backend traces."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def gradients(x, alpha):
            with tf.GradientTape() as tape:
                tape.watch([x, alpha])
                y = keras_relu.activations.prelu(x, alpha)
            return tape.gradient(y, [x, alpha], output_gradients=upstream)

        return [g.numpy() for g in gradients(tf.constant(x), tf.constant(alpha))]
    if backend == "jax":
        import jax

        def total(x, alpha):
            return (keras_relu.activations.prelu(x, alpha) * upstream).sum()

        return [np.asarray(g) for g in jax.jit(jax.grad(total, argnums=(0, 1)))(x, alpha)]
    import torch  # No tracing by default: the eager gradients.

    x, alpha = torch.tensor(x, requires_grad=True), torch.tensor(alpha, requires_grad=True)
    (keras_relu.activations.prelu(x, alpha) * torch.tensor(upstream)).sum().backward()
    return [x.grad.numpy(), alpha.grad.numpy()]


@pytest.mark.parametrize("alpha_shape", [(), (3,), (1, 1, 3), (2, 1, 1), (2, 4, 3)])
def test_prelu_compiled_gradients_follow_the_formula(alpha_shape):
    # Traced TensorFlow graphs keep Keras's form (for TFLite) with a hand-written gradient.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    x[0, 0] = 0.0  # The kink: the derivative there is alpha, as everywhere else.
    alpha = rng.uniform(-0.5, 1.5, size=alpha_shape).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    d_x, d_alpha = _compiled_prelu_gradients(x, alpha, upstream)
    np.testing.assert_allclose(d_x, np.where(x > 0, 1.0, alpha) * upstream, rtol=1e-6)
    per_element = np.where(x > 0, 0.0, x * upstream)
    shared = tuple(range(x.ndim - len(alpha_shape))) + tuple(
        x.ndim - len(alpha_shape) + axis for axis, size in enumerate(alpha_shape) if size == 1
    )
    expected = per_element.sum(axis=shared, keepdims=True).reshape(alpha_shape)
    assert d_alpha.shape == alpha_shape
    np.testing.assert_allclose(d_alpha, expected, rtol=1e-5, atol=1e-6)


def test_rrelu_training_slopes_lie_in_bounds():
    x = -np.linspace(0.5, 3.0, 4000, dtype="float32")[None, :]
    layer = keras_relu.RReLU(lower=0.1, upper=0.3, seed=7)
    slopes = ops.convert_to_numpy(layer(x, training=True)) / x
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6
    # 4000 uniform draws: the mean is within a few standard errors of 0.2.
    assert abs(slopes.mean() - 0.2) < 0.005
    positive = -x
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(positive, training=True)), positive)


@pytest.mark.parametrize("name", keras_relu.names())
def test_nan_propagates(name):
    x = np.array([[np.nan, -1.0, 1.0]], "float32")
    y = ops.convert_to_numpy(keras_relu.get(name)(x))
    nan_columns = [0, 3] if name == "crelu" else [0]
    assert np.isnan(y[0, nan_columns]).all()
    assert not np.isnan(np.delete(y[0], nan_columns)).any()


@pytest.mark.parametrize("name", ["relu", "relu6", "crelu"])
def test_integer_inputs_give_exact_integers(name):
    x = np.array([[-2, -1, 0, 1, 2, 7]], "int32")
    y = keras_relu.get(name)(x)
    assert keras.backend.standardize_dtype(y.dtype) == "int32"
    expected = {"relu": ref.relu, "relu6": ref.relu6, "crelu": ref.crelu}[name](x)
    np.testing.assert_array_equal(ops.convert_to_numpy(y), expected)


@pytest.mark.parametrize("name", ["leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "swish"])
def test_integer_inputs_raise_for_non_integer_variants(name):
    with pytest.raises(TypeError, match=r"needs a floating-point input.*int32"):
        keras_relu.get(name)(np.array([[-2, 1]], "int32"))


def test_relu_with_options_rejects_integers():
    with pytest.raises(TypeError, match="relu needs a floating-point input"):
        keras_relu.activations.relu(np.array([-2, 3]), max_value=2)


@pytest.mark.parametrize("axis", [1, 2, -1, -3])
def test_crelu_matches_concatenate_on_any_axis(axis):
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5)).astype("float32")
    y = ops.convert_to_numpy(keras_relu.activations.crelu(x, axis=axis))
    np.testing.assert_array_equal(y, ref.crelu(x, axis=axis))
