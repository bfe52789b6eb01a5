"""Every layer against PyTorch's own implementation (and `tf.nn.crelu`).

Outputs and gradients (with respect to the input and to the layer's trainable
weights) are computed on the current Keras backend and compared with
`torch.nn.functional` (and `tf.nn.crelu` for CReLU, which PyTorch lacks) on the
same random inputs. Needs both torch and TensorFlow importable, whatever the
backend; torch is imported first (importing it after TensorFlow can crash).
"""

import keras
import numpy as np
import pytest

import keras_relu

torch = pytest.importorskip("torch", reason="the cross-framework check compares with PyTorch")
tf = pytest.importorskip("tensorflow", reason="the CReLU reference is tf.nn.crelu")
F = torch.nn.functional

RTOL = 1e-5
ATOL = 1e-5


# --- references, each `(x, params) -> y` on torch tensors, params by weight name.


def _torch_prelu(x, params):
    # torch.nn.functional.prelu puts channels on dim 1; the layer on the last axis.
    alpha = params["alpha"].reshape(-1)
    if x.ndim == 2:
        return F.prelu(x, alpha)
    return F.prelu(torch.movedim(x, -1, 1), alpha).movedim(1, -1)


def _torch_swish(beta):
    return lambda x, params: x * torch.sigmoid(beta * x)


def _torch_learned_swish(x, params):
    return x * torch.sigmoid(params["beta"] * x)


def _tf_crelu(axis):
    return lambda x: tf.nn.crelu(x, axis=axis)


def _case(case_id, name, factory, reference, framework="torch", shape=(6, 7)):
    return pytest.param(name, factory, reference, framework, shape, id=case_id)


def _torch(function, **kwargs):
    return lambda x, params: function(x, **kwargs)


CASES = [
    _case("relu", "relu", keras_relu.ReLU, _torch(F.relu)),
    _case("relu_max6", "relu", lambda: keras_relu.ReLU(max_value=6.0), _torch(F.relu6)),
    _case("leaky_relu", "leaky_relu", keras_relu.LeakyReLU, _torch(F.leaky_relu)),
    _case(
        "leaky_relu_0.2",
        "leaky_relu",
        lambda: keras_relu.LeakyReLU(0.2),
        _torch(F.leaky_relu, negative_slope=0.2),
    ),
    _case("prelu_2d", "prelu", None, _torch_prelu),
    _case("prelu_4d", "prelu", None, _torch_prelu, shape=(2, 3, 4, 5)),
    _case("rrelu_eval", "rrelu", keras_relu.RReLU, _torch(F.rrelu, training=False)),
    _case(
        "rrelu_eval_bounds",
        "rrelu",
        lambda: keras_relu.RReLU(0.1, 0.5),
        _torch(F.rrelu, lower=0.1, upper=0.5, training=False),
    ),
    _case("elu", "elu", keras_relu.ELU, _torch(F.elu)),
    _case("elu_0.5", "elu", lambda: keras_relu.ELU(0.5), _torch(F.elu, alpha=0.5)),
    _case("selu", "selu", keras_relu.SELU, _torch(F.selu)),
    _case("relu6", "relu6", keras_relu.ReLU6, _torch(F.relu6)),
    _case("crelu", "crelu", keras_relu.CReLU, _tf_crelu(-1), "tf"),
    _case("crelu_axis1", "crelu", lambda: keras_relu.CReLU(axis=1), _tf_crelu(1), "tf", (3, 4, 5)),
    _case("gelu", "gelu", keras_relu.GELU, _torch(F.gelu)),
    _case(
        "gelu_tanh",
        "gelu",
        lambda: keras_relu.GELU(approximate=True),
        _torch(F.gelu, approximate="tanh"),
    ),
    _case("silu", "swish", keras_relu.SiLU, _torch(F.silu)),
    _case("swish_1.7", "swish", lambda: keras_relu.Swish(beta=1.7), _torch_swish(1.7)),
    _case(
        "swish_learned",
        "swish",
        lambda: keras_relu.Swish(beta=0.8, learn_beta=True),
        _torch_learned_swish,
    ),
]


def _make_layer(factory):
    if factory is not None:
        return factory()
    # Random per-channel slopes, so a mix-up of channels or a constant alpha shows.
    return keras_relu.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=3))


def _keras_output_and_grads(layer, x, upstream):
    """Returns `(y, dy/dx . upstream, {weight name: dy/dw . upstream})` as NumPy."""
    layer(x)  # Build outside any trace or tape.
    names = [v.name for v in layer.trainable_variables]
    backend = keras.config.backend()
    if backend == "tensorflow":
        x_t = tf.constant(x)
        weights = [v.value for v in layer.trainable_variables]
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            y = layer(x_t)
        grads = tape.gradient(y, [x_t, *weights], output_gradients=tf.constant(upstream))
    elif backend == "jax":
        import jax

        def f(x_j, trainable):
            y, _ = layer.stateless_call(
                trainable, [v.value for v in layer.non_trainable_variables], x_j
            )
            return y

        trainable = [v.value for v in layer.trainable_variables]
        y, vjp = jax.vjp(f, jax.numpy.asarray(x), trainable)
        grad_x, grad_w = vjp(jax.numpy.asarray(upstream))
        grads = [grad_x, *grad_w]
    elif backend == "torch":
        x_t = torch.tensor(x, requires_grad=True)
        y = layer(x_t)
        y.backward(torch.tensor(upstream))
        grads = [x_t.grad, *(v.value.grad for v in layer.trainable_variables)]
    else:
        pytest.skip(f"no gradient helper for backend {backend!r}")
    grads = [keras.ops.convert_to_numpy(g) for g in grads]
    return keras.ops.convert_to_numpy(y), grads[0], dict(zip(names, grads[1:], strict=True))


def _reference_output_and_grads(reference, framework, x, upstream, params):
    if framework == "tf":
        x_t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            y = reference(x_t)
        grad = tape.gradient(y, x_t, output_gradients=tf.constant(upstream))
        return y.numpy(), grad.numpy(), {}
    x_t = torch.tensor(x, requires_grad=True)
    params_t = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    y = reference(x_t, params_t)
    y.backward(torch.tensor(upstream))
    grads = {name: p.grad.numpy() for name, p in params_t.items()}
    return y.detach().numpy(), x_t.grad.numpy(), grads


def _inputs(shape, kinks):
    x = 3.0 * np.random.default_rng(0).standard_normal(shape)
    if kinks:
        # The points where the derivative needs a convention: 0 for all, 6 for ReLU6.
        x.flat[::4] = 0.0
        x.flat[1::9] = 6.0
    return x.astype("float32")


def test_every_variant_has_a_case():
    assert {case.values[0] for case in CASES} == set(keras_relu.names())


@pytest.mark.parametrize("kinks", [False, True], ids=["random", "kinks"])
@pytest.mark.parametrize("name, factory, reference, framework, shape", CASES)
def test_matches_reference(name, factory, reference, framework, shape, kinks):
    """Outputs and gradients match; with `kinks`, also where the derivative needs a
    convention (x = 0, and 6 for ReLU6): the reference's, which PyTorch follows."""
    if kinks and name == "selu" and keras.config.backend() == "tensorflow":
        pytest.skip(
            "tf.nn.selu's kernel takes the right derivative at 0 (scale, not PyTorch's "
            "scale * alpha); test_formulas.py pins that documented difference"
        )
    layer = _make_layer(factory)
    assert isinstance(layer, keras_relu.variant(name).layer)
    x = _inputs(shape, kinks)
    y_shape = layer.compute_output_shape(shape)
    upstream = np.random.default_rng(1).standard_normal(y_shape).astype("float32")

    y, grad_x, grad_w = _keras_output_and_grads(layer, x, upstream)
    params = {
        v.name: keras.ops.convert_to_numpy(v.value).astype("float32")
        for v in layer.trainable_variables
    }
    y_ref, grad_x_ref, grad_w_ref = _reference_output_and_grads(
        reference, framework, x, upstream, params
    )

    assert y.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=ATOL, err_msg="outputs")
    np.testing.assert_allclose(grad_x, grad_x_ref, rtol=RTOL, atol=ATOL, err_msg="input grads")
    assert grad_w.keys() == grad_w_ref.keys()
    for weight_name, grad in grad_w.items():
        np.testing.assert_allclose(
            grad.reshape(grad_w_ref[weight_name].shape),
            grad_w_ref[weight_name],
            rtol=1e-4,  # a sum over the batch
            atol=1e-5,
            err_msg=f"gradient of {weight_name}",
        )
