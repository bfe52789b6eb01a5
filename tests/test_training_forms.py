"""The forms a training step runs (issue 30) compute what the formulas say.

In a training call of a traced TensorFlow graph (what `fit` runs), PReLU and GELU run
forward and backward as XLA-compiled functions with hand-written derivatives, and RReLU
does so in every call; on torch, PReLU and RReLU run in an autograd Function
around torch's PReLU kernel, and GELU takes torch's kernel when its output is finite.
These tests hold those forms to float64 references, PReLU's to the export form's forward
bit for bit, and check that a training step takes them.
"""

import keras
import numpy as np
import pytest
import references as ref

import keras_relu

BACKEND = keras.config.backend()
EDGES = [0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 3e38, -3e38, 50.0, -50.0, 1.0, -1.0]
ALPHAS = [0.25, -0.3, 1.5, 0.0]  # PReLU's slopes: negative, above 1 and 0 included.


def _inputs(channels=4, rows=64):
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(rows, channels)).astype("float32")
    x.flat[: len(EDGES)] = EDGES
    return x


def _cotangent(shape):
    return np.random.default_rng(1).uniform(0.5, 1.5, size=shape).astype("float32")


def _model(layer, channels):
    inputs = keras.Input((channels,))
    return keras.Model(inputs, layer(inputs))


def training_step(model, x, w, training=True):
    """`y = model(x, training=training)` and the gradients of `sum(y * w)` for x and for
    each trainable weight, as a compiled training step computes them on this backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = model(x, training=training)
                total = tf.reduce_sum(y * w)
            return y, tape.gradient(total, [x, *model.trainable_variables])

        y, grads = step(tf.constant(x))
        return y.numpy(), [g.numpy() for g in grads]
    if BACKEND == "jax":
        import jax

        weights = [v.value for v in model.trainable_variables]
        state = [v.value for v in model.non_trainable_variables]

        def total(x, weights):
            y, _ = model.stateless_call(weights, state, x, training=training)
            return (y * w).sum(), y

        (_, y), (dx, dw) = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(
            x, weights
        )
        return np.asarray(y), [np.asarray(dx), *(np.asarray(g) for g in dw)]
    import torch

    xt = torch.tensor(x, requires_grad=True)
    y = model(xt, training=training)
    weights = [v.value for v in model.trainable_variables]
    grads = torch.autograd.grad((y * torch.tensor(w)).sum(), [xt, *weights])
    return y.detach().numpy(), [g.numpy() for g in grads]


def _prelu_model():
    model = _model(keras_relu.PReLU(), len(ALPHAS))
    model.layers[-1].alpha.assign(np.array(ALPHAS, "float32"))
    return model


def test_prelu_training_step_matches_the_formula():
    x = _inputs()
    w = _cotangent(x.shape)
    y, (dx, d_alpha) = training_step(_prelu_model(), x, w)
    x64, alpha = x.astype("float64"), np.array(ALPHAS)
    np.testing.assert_allclose(y, np.where(x64 > 0, x64, alpha * x64), rtol=1e-6, atol=1e-38)
    # The derivative at 0 is the slope, as in the export form and on every backend; XLA
    # on a CPU flushes subnormal inputs to zero, so their derivative may be either side's.
    normal = (x == 0) | (np.abs(x) >= np.finfo("float32").tiny)
    expected = np.where(x64 > 0, 1.0, alpha) * w
    np.testing.assert_allclose(dx[normal], expected[normal], rtol=1e-6, atol=1e-38)
    expected = (np.where(x64 > 0, 0.0, x64) * w).sum(axis=0)
    np.testing.assert_allclose(d_alpha, expected, rtol=1e-5, atol=1e-3)


def test_prelu_training_forward_is_the_export_forward_to_the_bit():
    """The same values as the form TFLite maps; only a zero's sign may differ."""
    x = _inputs()
    w = _cotangent(x.shape)
    model = _prelu_model()
    trained, _ = training_step(model, x, w, training=True)
    inferred, _ = training_step(model, x, w, training=False)
    np.testing.assert_array_equal(trained, inferred)  # -0 == 0 here
    nonzero = inferred != 0
    np.testing.assert_array_equal(trained.view("int32")[nonzero], inferred.view("int32")[nonzero])


@pytest.mark.parametrize(
    "name, forward, derivative",
    [("gelu", ref.gelu, ref.d_gelu), ("swish", ref.swish, ref.d_swish)],
)
def test_smooth_training_steps_match_the_formula(name, forward, derivative):
    x = _inputs()
    x = x[np.abs(x).max(axis=1) < 1e3]  # The formulas' float64 references overflow past that.
    w = _cotangent(x.shape)
    y, (dx,) = training_step(_model(keras_relu.get(name), x.shape[1]), x, w)
    x64 = x.astype("float64")
    np.testing.assert_allclose(y, forward(x64), rtol=3e-6, atol=1e-6)
    np.testing.assert_allclose(dx, derivative(x64) * w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["gelu", "swish"])
def test_smooth_training_forward_is_the_inference_forward_within_rounding(name):
    x = _inputs()
    w = _cotangent(x.shape)
    model = _model(keras_relu.get(name), x.shape[1])
    trained, _ = training_step(model, x, w, training=True)
    inferred, _ = training_step(model, x, w, training=False)
    np.testing.assert_allclose(trained, inferred, rtol=4e-7, atol=1e-6)


def test_rrelu_training_gradient_is_the_drawn_slope():
    x = _inputs()
    x = x[(np.abs(x) > 1e-3).all(axis=1)]  # y / x recovers the slope exactly enough.
    w = _cotangent(x.shape)
    y, (dx,) = training_step(_model(keras_relu.RReLU(seed=4), x.shape[1]), x, w)
    negative = x < 0
    slopes = y[negative] / x[negative]
    lower, upper = keras_relu.activations.RRELU_LOWER, keras_relu.activations.RRELU_UPPER
    assert slopes.min() >= lower and slopes.max() <= upper
    assert len(np.unique(slopes)) > 0.9 * slopes.size  # One draw per element.
    np.testing.assert_allclose(dx[negative], slopes * w[negative], rtol=1e-5)
    np.testing.assert_array_equal(dx[~negative], w[~negative])


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA clusters inside a TensorFlow graph")
@pytest.mark.parametrize("name", ["prelu", "gelu"])
def test_tensorflow_training_call_runs_xla_functions_and_inference_none(name):
    """fit's graph (a tf.function without XLA) calls XLA-compiled functions for the
    activation in a training call; an inference or export trace has none."""
    import tensorflow as tf

    model = _model(keras_relu.get(name), 4)

    def xla_calls(training):
        graph = (
            tf.function(lambda x: model(x, training=training))
            .get_concrete_function(tf.TensorSpec((None, 4), "float32"))
            .graph
        )
        return [
            op
            for op in graph.get_operations()
            if op.type in ("PartitionedCall", "StatefulPartitionedCall")
            and op.node_def.attr["_XlaMustCompile"].b
        ]

    assert xla_calls(training=True)
    assert not xla_calls(training=False)


@pytest.mark.skipif(BACKEND != "torch", reason="torch's GELU kernel")
def test_torch_gelu_is_exact_where_the_kernel_is_not():
    """torch's CPU kernel gives NaN at +-inf and inf at 3e38; the layer does not."""
    import torch

    x = torch.tensor([-np.inf, -3e38, -40.0, -1.0, 0.0, 1.0, 40.0, 3e38, np.inf])
    x.requires_grad_(True)
    y = keras_relu.GELU()(x)
    y.sum().backward()
    expected = [0.0, 0.0, 0.0, ref.gelu(-1.0), 0.0, ref.gelu(1.0), 40.0, 3e38, np.inf]
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-6, atol=0)
    derivative = [0.0, 0.0, 0.0, ref.d_gelu(-1.0), 0.5, ref.d_gelu(1.0), 1.0, 1.0, 1.0]
    np.testing.assert_allclose(x.grad.numpy(), derivative, rtol=1e-6, atol=0)
    ordinary = torch.tensor(_inputs()[3:])  # Past the edges: the kernel's own values.
    np.testing.assert_array_equal(
        keras_relu.GELU()(ordinary).numpy(), torch.nn.functional.gelu(ordinary).numpy()
    )


@pytest.mark.skipif(BACKEND == "jax", reason="JAX differentiates its own forms; no custom one")
@pytest.mark.parametrize("name", ["prelu", "gelu"])
def test_second_derivatives_through_the_training_form(name):
    """A gradient penalty differentiates the gradient: the hand-written backward (an XLA
    function on TensorFlow, an autograd Function on torch) is itself differentiable, and
    gives what the inference form's gives."""
    x = _inputs()[3:]
    model = _prelu_model() if name == "prelu" else _model(keras_relu.get(name), x.shape[1])

    def penalty_gradient(training):
        if BACKEND == "tensorflow":
            import tensorflow as tf

            @tf.function
            def step(x):
                with tf.GradientTape() as outer:
                    outer.watch(x)
                    with tf.GradientTape() as inner:
                        inner.watch(x)
                        total = tf.reduce_sum(model(x, training=training) ** 2)
                    penalty = tf.reduce_sum(inner.gradient(total, x) ** 2)
                return outer.gradient(penalty, x)

            return step(tf.constant(x)).numpy()
        import torch

        xt = torch.tensor(x, requires_grad=True)
        total = (model(xt, training=training) ** 2).sum()
        (gradient,) = torch.autograd.grad(total, xt, create_graph=True)
        (second,) = torch.autograd.grad((gradient**2).sum(), xt)
        return second.numpy()

    trained = penalty_gradient(training=True)
    assert np.isfinite(trained).all()
    np.testing.assert_allclose(trained, penalty_gradient(training=False), rtol=1e-4, atol=1e-4)
