"""NumPy float64 references of every formula and derivative (activations.md), and a
backend-neutral input gradient. Written from the formulas, not from the package."""

import math

import keras
import numpy as np

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_erf = np.vectorize(math.erf)


def _phi(x):
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    y = np.where(x > threshold, x, negative_slope * (x - threshold))
    return y if max_value is None else np.minimum(y, max_value)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def selu(x):
    return SELU_SCALE * elu(x, SELU_ALPHA)


def relu6(x):
    return np.minimum(np.maximum(x, 0), 6)


def crelu(x, axis=-1):
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=axis)


def gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return x * _phi(x)


def swish(x, beta=1.0):
    return x * _sigmoid(beta * x)


# Derivatives, with the conventions of activations.md at the kinks.
def d_relu(x):
    return (x > 0).astype(np.float64)


def d_leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, 1.0, negative_slope)


def d_elu(x, alpha=1.0):
    return np.where(x > 0, 1.0, elu(x, alpha) + alpha)


def d_relu6(x):
    return ((x > 0) & (x < 6)).astype(np.float64)


def d_gelu(x):
    return _phi(x) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def d_swish(x, beta=1.0):
    s = _sigmoid(beta * x)
    return s + beta * x * s * (1 - s)


def input_gradient(fn, x):
    """d(sum(fn(x)))/dx on the current backend, as a NumPy array."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda t: fn(t).sum())(x))
    import torch

    x = torch.tensor(x, requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()
