"""Functional forms of the ReLU family, written with `keras.ops` only.

Each function is the single implementation of its variant: the layers in
`keras_relu.layers` call these and add only state (weights, seeds) and config.
Defaults are the layers' defaults; where the major frameworks disagree the choice
is written next to the argument.

Integer inputs: `relu` (with its default arguments), `relu6` and `crelu` map
integers to integers exactly as NumPy would (`relu([-2, -1, 0, 1, 2])` is
`[0, 0, 0, 1, 2]`). Every other function produces non-integer values, so it
raises `TypeError` for an integer input instead of silently casting it.
"""

import functools
import inspect
import math

import keras
import numpy as np
from keras import ops

from keras_relu import _checks
from keras_relu import _keras_integration

# Klambauer et al. 2017, eq. 14: the fixed point of the self-normalizing map.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Xu et al. 2015 draw the negative slope from U(1/8, 1/3) (their U(3, 8) divisor).
RRELU_LOWER = 1.0 / 8.0
RRELU_UPPER = 1.0 / 3.0

_register = keras.saving.register_keras_serializable(package="keras_relu")
_FUNCTIONS = {}  # name -> undecorated function, for `ActivationCall`.


def _activation(function):
    """Registers `function` for serialization and lets it take symbolic inputs.

    On a `KerasTensor` (the functional API) the call becomes one `ActivationCall` node,
    as `keras.ops` functions become `Operation` nodes; the function itself runs on real
    tensors only (its backend branches and custom gradients need them).
    """
    _FUNCTIONS[function.__name__] = function
    signature = inspect.signature(function)

    @functools.wraps(function)
    def activation(*args, **kwargs):
        if any(isinstance(arg, keras.KerasTensor) for arg in (*args, *kwargs.values())):
            # The input is the node's first input and other tensors its keyword inputs;
            # every other argument, given by position or by keyword, is its config.
            given = signature.bind(*args, **kwargs).arguments
            x = given.pop(next(iter(signature.parameters)), None)
            tensors = {k: v for k, v in given.items() if isinstance(v, keras.KerasTensor)}
            arguments = {k: v for k, v in given.items() if k not in tensors}
            return _node(function.__name__, arguments)(x, **tensors)
        return function(*args, **kwargs)

    return _register(activation)


def _unique_name(prefix):
    """`prefix`, then `prefix_1`, `prefix_2`...: the names `keras.ops` calls get.

    One counter per prefix, shared with Keras's own operations, so that a
    `keras.ops.relu` and a `keras_relu.activations.relu` in one model are `relu` and
    `relu_1`, as two `keras.ops.relu` calls would be.
    """
    uid = keras.backend.get_uid(prefix)
    return prefix if uid == 1 else f"{prefix}_{uid - 1}"


def _draws_random_numbers(function, arguments):
    return function == "rrelu" and bool(arguments.get("training", False))


def _node(function, arguments, name=None):
    """The node for a call of `function`: stateless, or a layer that owns a seed."""
    if function in _FUNCTIONS and _draws_random_numbers(function, arguments or {}):
        return RandomActivationCall(function, arguments, name=name)
    return ActivationCall(function, arguments, name=name)


# What a node's argument may be: what a `.keras` file stores exactly and loads back under
# `safe_mode`, through `keras.saving.serialize_keras_object` (NumPy arrays and backend
# tensors keep their dtype; NumPy scalars become Python numbers of the same value; tuples
# load as lists).
_PLAIN_ARGUMENTS = (type(None), bool, int, float, np.bool_, np.integer, np.floating)
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_SAVED_FORMS = ("__numpy__", "__tensor__")  # The serialized forms a config may hold.


def _check_argument(function, name, value):
    """Raises `TypeError` for an argument a saved model could not load back exactly."""
    where = f"keras_relu.activations.{function}({name}=...) on a KerasTensor"
    if isinstance(value, keras.Variable):
        raise TypeError(
            f"{where} cannot take a `keras.Variable`: a functional model saves its "
            "arguments as constants and would not train it. Use the layer "
            f"(`keras_relu.get({function!r})`), whose weights the model tracks, or pass the "
            f"values as a NumPy array. Received: {name}={value!r}"
        )
    if isinstance(value, keras.random.SeedGenerator):
        raise TypeError(
            f"{where} takes an int or None: the node makes a `keras.random.SeedGenerator` "
            f"of its own, which the model tracks. Received: {name}={value!r}"
        )
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_argument(function, name, item)
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(
                f"{where} needs a NumPy array of numbers or booleans to save it. "
                f"Received: {name} of dtype {value.dtype}"
            )
        return
    if isinstance(value, _PLAIN_ARGUMENTS) or keras.ops.is_tensor(value):
        return
    raise TypeError(
        f"{where} needs a value a saved model can load back: a number, a bool, None, "
        f"a NumPy array or scalar, a tensor, or a list of these (a tensor argument "
        f"that should be a model input must be a KerasTensor). Received: {name}={value!r} "
        f"of type {type(value).__name__}"
    )


def _saved_form(arguments):
    """`arguments` as a saved model loads them back: what the node computes with, so
    that a model computes the same before and after saving."""
    serialized = keras.saving.serialize_keras_object(dict(arguments))
    return keras.saving.deserialize_keras_object(serialized, safe_mode=True)


def _check_saved_forms(config_value, function):
    """Refuses a config whose arguments name any object but an array or a tensor."""
    if isinstance(config_value, dict):
        if "class_name" in config_value and config_value["class_name"] not in _SAVED_FORMS:
            raise ValueError(
                f"An argument of `keras_relu.activations.{function}` in this config names "
                f"the object {config_value['class_name']!r}; only arrays and tensors "
                f"({', '.join(_SAVED_FORMS)}) may appear. Received: {config_value!r}"
            )
        for value in config_value.values():
            _check_saved_forms(value, function)
    elif isinstance(config_value, (list, tuple)):
        for value in config_value:
            _check_saved_forms(value, function)


@_register
class ActivationCall(keras.Operation):
    """A call of a `keras_relu.activations` function as a node of a functional model.

    Made by the functions themselves when given a `KerasTensor`; it saves as the
    function's name and arguments, and loads only names of this module. Arguments may
    be numbers, bools, None, NumPy arrays and scalars, tensors, or lists of these: they
    save through `keras.saving.serialize_keras_object` and load back exactly (arrays keep
    their dtype) under `safe_mode`; anything else is refused when the node is made, not
    when the model is loaded. Nodes are named as `keras.ops` calls are:
    `crelu`, `crelu_1`, ...

    Args:
        function: The function's name, e.g. "crelu".
        arguments: Its arguments other than tensors, by name, e.g. `{"axis": 1}`.
            Default: None.
        name: The node's name. Default: the function's name, made unique.

    Example:
    >>> inputs = keras.Input((4,))
    >>> model = keras.Model(inputs, keras_relu.activations.crelu(inputs))  # (None, 8)
    >>> model.operations[-1]  # ActivationCall: function="crelu", arguments={}
    """

    _base_arguments = {}  # For the base class's constructor.

    def __init__(self, function, arguments=None, name=None):
        if function not in _FUNCTIONS:
            raise ValueError(
                f"`function` must be one of {sorted(_FUNCTIONS)}. Received: function={function!r}"
            )
        arguments = dict(arguments or {})
        if _draws_random_numbers(function, arguments) and not isinstance(
            self, RandomActivationCall
        ):
            raise ValueError(
                f"{function}(training=True) draws random numbers: its node is a "
                "`RandomActivationCall`, which owns the seed generator. Received: "
                f"arguments={arguments!r}"
            )
        for argument, value in arguments.items():
            _check_argument(function, argument, value)
        super().__init__(name=name or _unique_name(function), **self._base_arguments)
        self.function = function
        self.arguments = _saved_form(arguments)

    def call(self, *args, **tensors):
        return _FUNCTIONS[self.function](*args, **tensors, **self.arguments)

    def get_config(self):
        return {
            "name": self.name,
            "function": self.function,
            "arguments": keras.saving.serialize_keras_object(dict(self.arguments)),
        }

    @classmethod
    def from_config(cls, config):
        # Keras's from_config turns every constructor error into a TypeError; a config
        # is data, so an unknown function stays a ValueError naming it.
        config = dict(config)
        function = config.pop("function", None)
        arguments = config.pop("arguments", None) or {}
        _check_saved_forms(arguments, function)
        arguments = keras.saving.deserialize_keras_object(arguments, safe_mode=True)
        # A file saved before RandomActivationCall existed names ActivationCall for
        # rrelu(training=True): `_node` picks the class that can run it.
        return _node(function, arguments, **config)


@_register
class RandomActivationCall(ActivationCall, keras.layers.Layer):
    """An `ActivationCall` that draws random numbers: `rrelu(x, training=True)`.

    A layer, so that the model tracks the `keras.random.SeedGenerator` it owns, as it
    tracks a `Dropout`'s: the generator's state is a model variable, so each call, eager
    or compiled, in `fit` as in `predict`, draws anew, and a seeded node repeats its
    draws on a backend. `training=True` is the node's argument, not the model's flag:
    the node draws in every call (for slopes that follow the model's training flag, use
    the `keras_relu.layers.RReLU` layer). Its inputs keep their dtype (no autocasting),
    as in the other nodes.

    Args:
        function: The function's name: "rrelu".
        arguments: Its arguments by name; `seed` an int or None. Default: None.
        name: The node's name. Default: the function's name, made unique.
    """

    _base_arguments = {"autocast": False}  # Layer's: inputs keep their dtype.

    def __init__(self, function, arguments=None, name=None):
        if not _draws_random_numbers(function, arguments or {}):
            raise ValueError(
                "RandomActivationCall is for rrelu(training=True). Received: "
                f"function={function!r}, arguments={arguments!r}"
            )
        super().__init__(function, arguments, name=name)
        seed = _checks.check_seed(self.arguments.get("seed"))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True  # Elementwise.
        _keras_integration.build_at_init(self)

    def call(self, inputs):
        arguments = {**self.arguments, "seed": self.seed_generator}
        return _FUNCTIONS[self.function](inputs, **arguments)


def _eager_tensorflow():
    """True when TensorFlow runs eagerly; False inside tf.function, XLA or export tracing.

    Decided by the execution context, not by the input: a tensor made outside a
    tf.function is still an EagerTensor when the function's graph captures it.
    """
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.executing_eagerly()


def _traced_tensorflow_training():
    """A training call in a traced TensorFlow graph: where `_tensorflow_fused` applies."""
    return (
        keras.config.backend() == "tensorflow"
        and not _eager_tensorflow()
        and _keras_integration.training_call()
    )


def _as_tensor(x, function_name, allow_integers=False):
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if keras.backend.is_float_dtype(dtype):
        return x
    if allow_integers and "int" in dtype:
        return x
    raise TypeError(
        f"keras_relu.activations.{function_name} needs a floating-point input. "
        f"Received an input of dtype {dtype}; cast it first, for example with "
        "`keras.ops.cast(x, 'float32')`."
    )


@_activation
def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, with the options of `keras.activations.relu`.

    ```
    relu(x) = max_value         if x >= max_value
            = x                 if threshold < x < max_value
            = negative_slope * (x - threshold)   otherwise
    ```

    The derivative at the kink `x = threshold` is the left one (0 for a plain ReLU:
    TensorFlow, JAX and PyTorch agree). Results equal `keras.activations.relu` for the
    same arguments, except where Keras departs from this formula: Keras turns NaN into
    0 when `threshold != 0`, and clips `(threshold, 0)` to 0 when `threshold < 0` and
    `max_value` is set. Here NaN propagates and the formula holds.

    Args:
        x: Input tensor. Integer tensors are accepted with the default arguments.
        negative_slope: Slope below `threshold`, >= 0. Default: 0.0.
        max_value: Saturation value, >= 0, or `None` for none. Default: None.
        threshold: Values below it are damped to `negative_slope * (x - threshold)`.
            Default: 0.0.

    Example:
    >>> keras_relu.activations.relu([-2, -1, 0, 1, 2])  # [0, 0, 0, 1, 2]
    """
    _checks.check_non_negative("negative_slope", negative_slope)
    if max_value is not None:
        _checks.check_non_negative("max_value", max_value)
    _checks.check_finite("threshold", threshold)
    plain = negative_slope == 0 and max_value is None and threshold == 0
    x = _as_tensor(x, "relu", allow_integers=plain)
    if plain:
        return ops.relu(x)
    if threshold == 0 and negative_slope == 0 and max_value == 6:
        return ops.relu6(x)
    if threshold == 0 and max_value is None:
        return leaky_relu(x, negative_slope)
    # Scalars made in x's dtype: a bare Python float would pass through float32.
    slope = ops.convert_to_tensor(negative_slope, dtype=x.dtype)
    threshold = ops.convert_to_tensor(threshold, dtype=x.dtype)
    y = ops.where(x > threshold, x, ops.multiply(slope, ops.subtract(x, threshold)))
    if max_value is None:
        return y
    max_value = ops.convert_to_tensor(max_value, dtype=x.dtype)
    if keras.config.backend() == "torch":
        # Keras 3.15's torch minimum computes two float64 tensors in float32.
        return ops.where(y > max_value, max_value, y)
    return ops.minimum(y, max_value)


@_activation
def leaky_relu(x, negative_slope=0.01):
    """Leaky ReLU (Maas et al. 2013): `x if x > 0 else negative_slope * x`.

    The default slope, 0.01, is PyTorch's, JAX's and the paper's. Keras uses 0.2 in
    `keras.activations.leaky_relu` and 0.3 in `keras.layers.LeakyReLU`, so code
    ported from Keras that relied on its default must pass the slope explicitly.
    The derivative at 0 is `negative_slope`, as in TensorFlow and PyTorch.

    Args:
        x: Floating-point input tensor.
        negative_slope: Slope for `x <= 0`, >= 0. Default: 0.01.
    """
    _checks.check_non_negative("negative_slope", negative_slope)
    x = _as_tensor(x, "leaky_relu")
    if keras.config.backend() == "jax":
        # jax.nn.leaky_relu uses `x >= 0`, giving slope 1 at 0; keep the convention, in
        # one jitted call as jax.nn.leaky_relu is (eagerly, 3 dispatches cost 3-6x).
        return _call_jitted_on_jax(_negative_slope_where, x, negative_slope)
    return ops.leaky_relu(x, negative_slope=negative_slope)


def _negative_slope_where(x, slope):
    return ops.where(x > 0, x, ops.multiply(slope, x))


def _call_jitted_on_jax(function, *args, static_argnames=(), **kwargs):
    """`function(*args, **kwargs)`; on JAX through a cached `jax.jit` of it.

    Eager JAX dispatches each op on its own and a jitted function once, as `jax.nn`'s
    functions are; inside an outer jit the inner one is inlined.
    """
    if keras.config.backend() == "jax":
        return _jax_jit(function, static_argnames)(*args, **kwargs)
    return function(*args, **kwargs)


@functools.cache
def _jax_jit(function, static_argnames):
    import jax

    # Arguments not named static are traced: a new slope value does not recompile.
    return jax.jit(function, static_argnames=static_argnames)


@_activation
def prelu(x, alpha):
    """Parametric ReLU (He et al. 2015): `x if x > 0 else alpha * x`.

    `alpha` is a tensor broadcastable to `x` (one slope per channel in the
    `keras_relu.layers.PReLU` layer). The gradient with respect to `alpha` is `x`
    for `x <= 0` and 0 elsewhere.

    Args:
        x: Floating-point input tensor.
        alpha: Slopes for the negative part, broadcastable to `x`.
    """
    x = _as_tensor(x, "prelu")
    alpha = ops.cast(alpha, x.dtype)
    if keras.config.backend() == "tensorflow":
        if not _eager_tensorflow():
            if _traced_tensorflow_training():
                # A training step: the cheapest form (the same values, to the bit but for
                # the sign of a zero); export and inference keep the form TFLite maps.
                return _tensorflow_fused(_negative_slope_where, _negative_slope_gradient, x, alpha)
            return _prelu_traced_tensorflow(x, alpha)
        # Eager: each op is a pass over x. For alpha <= 1/2 (negative included),
        # max(alpha*x, x) is prelu in 2 passes instead of 5 (benchmarks/RESULTS.md),
        # with no tie but x = 0, where max's gradient takes the first argument: slope
        # alpha, as here. alpha = 0 is left out: 0 * inf would be NaN. The slopes are
        # few: checking them in NumPy costs far less than two TensorFlow reductions.
        slopes = ops.convert_to_numpy(alpha)
        if slopes.size and slopes.max() <= 0.5 and np.abs(slopes).min() > 0:
            return ops.maximum(ops.multiply(alpha, x), x)
    if keras.config.backend() == "torch":
        return _torch_negative_slope(x, alpha)
    return _call_jitted_on_jax(_negative_slope_where, x, alpha)


def _negative_slope_gradient(x, slope, upstream):
    """The gradients of `_negative_slope_where` for x and for slope (summed to its shape):
    the derivative at x = 0 is the slope, as in PyTorch and JAX."""
    positive = x > 0
    d_x = ops.where(positive, upstream, ops.multiply(slope, upstream))
    d_slope = ops.where(positive, ops.zeros_like(x), ops.multiply(x, upstream))
    return d_x, _sum_to_shape(d_slope, ops.shape(slope))


def _negative_slope_input_gradient(x, slope, upstream):
    """`_negative_slope_gradient` for x only: slopes that are drawn, not learned."""
    return ops.where(x > 0, upstream, ops.multiply(slope, upstream)), None


def _sum_to_shape(gradient, shape):
    """`gradient` summed over the axes a tensor of `shape` was broadcast along."""
    shape = tuple(shape)
    padded = (1,) * (len(gradient.shape) - len(shape)) + shape
    axes = tuple(i for i, size in enumerate(padded) if size == 1 and gradient.shape[i] != 1)
    return ops.reshape(ops.sum(gradient, axis=axes, keepdims=True), shape) if axes else gradient


def _tensorflow_fused(forward, backward, *inputs):
    """`forward(*inputs)` whose gradient is `backward(*inputs, upstream)`, each compiled by
    XLA into one fused loop, also inside a graph that runs op by op.

    `fit` on a CPU-only TensorFlow machine runs a `tf.function` without XLA, where each
    elementwise op is a pass over memory and a kernel launch: PReLU's select, GELU's erf
    form and their automatic gradients are 5-12 passes each way. An XLA-compiled function
    called from such a graph is compiled on its own (per input shape, once), so the
    activation's forward is one pass and its backward one or two, as ReLU's kernels are;
    inside a graph that XLA compiles whole (`jit_compile=True`) they are inlined.
    """
    import tensorflow as tf

    forward, backward = _xla_function(forward), _xla_function(backward)

    @tf.custom_gradient
    def fused(*inputs):
        def gradient(upstream):
            return backward(*inputs, upstream)

        return forward(*inputs), gradient

    return fused(*inputs)


@functools.cache
def _xla_function(function):
    import tensorflow as tf

    return tf.function(function, jit_compile=True, autograph=False)


def _torch_negative_slope(x, slope):
    """`x if x > 0 else slope * x` on torch: `keras_relu._torch_kernels.negative_slope`."""
    from keras_relu import _torch_kernels  # Imports torch: only on that backend.

    return _torch_kernels.negative_slope(x, slope)


def _prelu_traced_tensorflow(x, alpha):
    """PReLU in a traced TensorFlow graph outside a training call (inference, TFLite and
    ONNX export; a training call takes `_tensorflow_fused`).

    The forward is Keras's own form, which TFLite's converter pattern-matches to its PRELU
    kernel. Its automatic gradient (two relu gradients, a negation and a broadcast
    reduction) is replaced by a select for `x` and one masked reduction for `alpha`: fewer
    passes, with and without XLA (benchmarks/RESULTS.md). It also gives the derivative
    `alpha` at 0, as the other backends do.
    """

    def keras_form(x, alpha):
        return ops.add(ops.relu(x), ops.multiply(ops.negative(alpha), ops.relu(ops.negative(x))))

    if x.shape.rank is None or len(alpha.shape) > x.shape.rank or None in alpha.shape:
        return keras_form(x, alpha)  # Unusual slopes: the automatic gradient.
    padded_shape = (1,) * (len(x.shape) - len(alpha.shape)) + tuple(alpha.shape)
    shared_axes = tuple(axis for axis, size in enumerate(padded_shape) if size == 1)

    @ops.custom_gradient
    def prelu_with_gradient(x, alpha):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            positive = x > 0
            d_x = ops.where(positive, upstream, ops.multiply(alpha, upstream))
            d_alpha = ops.where(positive, ops.zeros_like(x), ops.multiply(x, upstream))
            d_alpha = ops.sum(d_alpha, axis=shared_axes, keepdims=True)
            return d_x, ops.reshape(d_alpha, alpha.shape)

        return keras_form(x, alpha), grad

    return prelu_with_gradient(x, alpha)


def check_rrelu_bounds(lower, upper):
    """Validates RReLU's slope range: `0 <= lower <= upper`, both finite.

    Returns `(lower, upper)` as floats; raises `ValueError` naming the bad argument.

    Example:
    >>> keras_relu.activations.check_rrelu_bounds(1 / 8, 1 / 3)  # (0.125, 0.333...)
    """
    lower = _checks.check_non_negative("lower", lower)
    upper = _checks.check_non_negative("upper", upper)
    if lower > upper:
        raise ValueError(f"`lower` must be <= `upper`. Received: lower={lower!r}, upper={upper!r}")
    return lower, upper


@_activation
def rrelu(x, lower=RRELU_LOWER, upper=RRELU_UPPER, training=False, seed=None):
    """Randomized leaky ReLU (Xu et al. 2015).

    ```
    training:   rrelu(x) = x if x > 0 else a * x,  a ~ U(lower, upper) per element
    inference:  rrelu(x) = x if x > 0 else (lower + upper) / 2 * x
    ```

    The inference slope is PyTorch's `(lower + upper) / 2`; Xu et al. divide by
    the mean of U(3, 8) instead (slope 1/5.5), which differs by 0.3%. Training slopes
    take 16 random bits each (`random_slopes`), drawn once per call and kept for the
    backward.

    Args:
        x: Floating-point input tensor.
        lower: Lower bound of the slope distribution. Default: 1/8.
        upper: Upper bound of the slope distribution. Default: 1/3.
        training: Draw random slopes (True) or use the mean slope. Default: False.
        seed: An int or a `keras.random.SeedGenerator`, as in `keras.random`; use a
            generator inside compiled functions. Default: None.
    """
    lower, upper = check_rrelu_bounds(lower, upper)
    if not training:
        return leaky_relu(x, negative_slope=(lower + upper) / 2.0)
    x = _as_tensor(x, "rrelu")
    slopes = random_slopes(x, lower, upper, seed)
    backend = keras.config.backend()
    if backend == "tensorflow":
        return _tensorflow_fused(_negative_slope_where, _negative_slope_input_gradient, x, slopes)
    if backend == "torch":
        return _torch_negative_slope(x, slopes)
    return ops.where(x > 0, x, ops.multiply(slopes, x))


SLOPE_BITS = 16  # Random bits per RReLU slope.


def random_slopes(x, lower=RRELU_LOWER, upper=RRELU_UPPER, seed=None):
    """RReLU's training slopes for `x`: one per element, 16 random bits each.

    `slope = lower + (upper - lower) * (k + 1/2) / 2**16`, with `k` uniform over the
    integers 0 ... 2**16 - 1: the midpoints of 65,536 equal cells of `[lower, upper]`
    (mean `(lower + upper) / 2` exactly; the gaps, 3.2e-6 for the default bounds, are
    finer than a float16 slope can tell). Sixteen bits halve the generator's work
    against a float's 32 (`keras.random.uniform`): one 32-bit word gives two slopes. The
    words come from the backend's counter-based generator, seeded as `keras.random` seeds
    (a `keras.random.SeedGenerator` advances one step per call): threefry on TensorFlow
    (in an XLA-compiled function, eager or not: so eager and compiled calls of a seeded
    layer draw the same) and JAX, the generator's `random_` on torch.

    Args:
        x: The input tensor: its shape, and its dtype for the slopes.
        lower: The smallest slope. Default: 1/8.
        upper: The largest slope. Default: 1/3.
        seed: An int, None or a `keras.random.SeedGenerator`. Default: None.

    Example:
    >>> keras_relu.activations.random_slopes(keras.ops.ones((2, 3)), seed=1)  # in [1/8, 1/3]
    """
    lower, upper = check_rrelu_bounds(lower, upper)
    x = _as_tensor(x, "random_slopes")
    seed = _keras_integration.backend_seed(seed)
    backend = keras.config.backend()
    if backend == "tensorflow":
        return _xla_function(_tensorflow_slopes)(x, seed, lower, upper)
    if backend == "jax":
        return _call_jitted_on_jax(_jax_slopes, x, seed, lower, upper)
    if backend == "torch":
        return _torch_slopes(x, seed, lower, upper)
    raise NotImplementedError(f"random_slopes has no {backend} form")


def _slopes_from_bits(k, lower, upper, dtype, offset=0):
    """`lower + (upper - lower) * (k + offset + 1/2) / 2**16`: `offset` 2**15 takes the
    bits as signed 16-bit integers (torch has no unsigned view of them)."""
    # float32 holds every k exactly (float16 does not above 2048); cast at the end.
    k = ops.cast(k, "float32")
    scale = (upper - lower) / 2.0**SLOPE_BITS
    return ops.cast(ops.add(lower + (offset + 0.5) * scale, ops.multiply(k, scale)), dtype)


def _tensorflow_slopes(x, seed, lower, upper):
    import tensorflow as tf

    size = tf.size(x)
    words = tf.random.stateless_uniform(
        [(size + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32, alg="threefry"
    )
    k = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
    return tf.reshape(_slopes_from_bits(k, lower, upper, x.dtype), tf.shape(x))


def _jax_slopes(x, key, lower, upper):
    import jax
    import jax.numpy as jnp

    size = math.prod(x.shape)
    words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    k = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)[:size]
    return _slopes_from_bits(k, lower, upper, x.dtype).reshape(x.shape)


def _torch_slopes(x, generator, lower, upper):
    import torch

    size = x.numel()
    words = torch.empty((size + 3) // 4, dtype=torch.int64, device=x.device)
    if generator is not None:  # None on the "meta" device, where Keras traces shapes.
        words.random_(-(2**63), None, generator=generator)  # All 64 bits random.
    # The signed view, converted straight to float: each op is a pass in eager torch.
    signed = words.view(torch.int16)[:size].reshape(x.shape).to(torch.float32)
    return _slopes_from_bits(signed, lower, upper, x.dtype, offset=2**15)


@_activation
def elu(x, alpha=1.0):
    """Exponential linear unit (Clevert et al. 2015).

    `elu(x) = x if x > 0 else alpha * (exp(x) - 1)`; the derivative is 1 for x > 0
    and `elu(x) + alpha` otherwise.

    Args:
        x: Floating-point input tensor.
        alpha: Saturation value for large negative inputs, >= 0. Default: 1.0.
    """
    alpha = _checks.check_non_negative("alpha", alpha)
    return ops.elu(_as_tensor(x, "elu"), alpha=alpha)


@_activation
def selu(x):
    """Scaled ELU (Klambauer et al. 2017): `SELU_SCALE * elu(x, SELU_ALPHA)`.

    Self-normalizing with `lecun_normal` initialization and no BatchNorm. At exactly
    x = 0 TensorFlow's fused kernel uses the right derivative (`SELU_SCALE`), where
    JAX and PyTorch use `SELU_SCALE * SELU_ALPHA`; elsewhere all agree.

    Args:
        x: Floating-point input tensor.
    """
    return ops.selu(_as_tensor(x, "selu"))


@_activation
def relu6(x):
    """ReLU capped at 6: `min(max(0, x), 6)`; the derivative is 0 at 0 and at 6.

    Args:
        x: Input tensor; integer tensors give integers.
    """
    x = _as_tensor(x, "relu6", allow_integers=True)
    if not keras.backend.is_float_dtype(x.dtype):
        # The JAX backend's relu6 returns floats for integers; clip keeps the dtype.
        return ops.clip(x, 0, 6)
    return ops.relu6(x)


@_activation
def crelu(x, axis=-1):
    """Concatenated ReLU (Shang et al. 2016): `concat([relu(x), relu(-x)], axis)`.

    The output has twice the size of `x` along `axis`: the first half holds
    `relu(x)`, the second `relu(-x)` (always >= 0), in the order of `tf.nn.crelu`.

    Args:
        x: Input tensor; integer tensors give integers.
        axis: The axis that doubles. Default: -1 (channels last).

    Example:
    >>> keras_relu.activations.crelu([[1.0, -2.0]])  # [[1, 0, 0, 2]]
    """
    x = _as_tensor(x, "crelu", allow_integers=True)
    axis = _checks.normalize_axis("axis", axis, len(x.shape))
    if not keras.backend.is_float_dtype(x.dtype):
        return _crelu_forward(x, axis)
    backend = keras.config.backend()
    if backend == "jax":
        return _call_jitted_on_jax(_jax_crelu(), x, axis=axis, static_argnames=("axis",))
    if backend == "tensorflow" and not _eager_tensorflow():
        return _tensorflow_traced_crelu(x, axis)
    # Eager TensorFlow runs op by op, and there a custom gradient costs more (30%); on
    # torch Keras's custom gradient is 1.4x slower than autograd's and blocks torch.func.
    return _crelu_forward(x, axis)


def _crelu_forward(x, axis):
    # Broadcast x against the signs [+1, -1] on a new axis just before `axis`, then
    # merge that pair into `axis`: the same values and order as a concatenate, but
    # an elementwise op XLA can fuse (a concatenate stops fusion).
    rank = len(x.shape)
    signs = ops.reshape(ops.convert_to_tensor([1, -1], dtype=x.dtype), (2,) + (1,) * (rank - axis))
    shape = ops.shape(x)
    out_shape = tuple(shape[:axis]) + (2 * shape[axis],) + tuple(shape[axis + 1 :])
    return ops.reshape(ops.relu(ops.multiply(ops.expand_dims(x, axis), signs)), out_shape)


def _crelu_tangent(x, tangent, axis):
    """CReLU's derivative applied to `tangent`: selects and a concatenate, no reduction.

    The automatic gradient of the broadcast in `_crelu_forward` is a reduction over the
    pair axis, which XLA leaves unfused (3-5x ReLU's fwd+bwd time); the transpose of this
    is two slices and two selects.
    """
    zero = ops.zeros_like(tangent)
    positive = ops.where(x > 0, tangent, zero)
    negative = ops.where(x < 0, ops.negative(tangent), zero)
    return ops.concatenate([positive, negative], axis=axis)


def _tensorflow_traced_crelu(x, axis):
    @ops.custom_gradient
    def crelu_with_gradient(x):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            positive, negative = ops.split(upstream, 2, axis=axis)
            zero = ops.zeros_like(positive)
            return ops.where(x > 0, positive, ops.where(x < 0, ops.negative(negative), zero))

        return _crelu_forward(x, axis), grad

    return crelu_with_gradient(x)


@functools.cache
def _jax_crelu():
    """CReLU with a `jax.custom_jvp`: forward and reverse mode, vmap and export all work.

    JAX derives the reverse-mode gradient by transposing the JVP, so one rule serves both;
    a custom VJP (what `ops.custom_gradient` makes) would take `jax.jvp` away.
    """
    import jax

    @functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
    def crelu(x, axis):
        return _crelu_forward(x, axis)

    @crelu.defjvp
    def crelu_jvp(axis, primals, tangents):
        (x,), (tangent,) = primals, tangents
        return _crelu_forward(x, axis), _crelu_tangent(x, tangent, axis)

    def crelu_with_axis(x, axis):  # jax.jit passes `axis` by keyword.
        return crelu(x, axis)

    return crelu_with_axis


@_activation
def gelu(x, approximate=False):
    """Gaussian error linear unit (Hendrycks and Gimpel 2016): `x * Phi(x)`.

    Exact (erf) by default, as in `keras.activations.gelu` and PyTorch;
    `approximate=True` uses `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, the
    default of `keras.ops.gelu` and JAX.

    Args:
        x: Floating-point input tensor.
        approximate: Use the tanh approximation. Default: False.
    """
    _checks.check_bool("approximate", approximate)
    x = _as_tensor(x, "gelu")
    # (float64 is left to tf.nn.gelu: TF's float64 erf is NaN beyond |x| ~ 1e154.)
    traced_tensorflow = keras.config.backend() == "tensorflow" and not _eager_tensorflow()
    if not approximate and traced_tensorflow and x.dtype != "float64":
        # tf.nn.gelu writes Phi with erfc, which tf2onnx cannot convert; in graphs (which
        # export traces) the erf form is used: one more op, fused by XLA, still TFLite's
        # GELU, ONNX's Erf. Eagerly, one op more is a pass more: tf.nn.gelu. A training
        # step, never exported, takes tf.nn.gelu's erfc form in one XLA loop each way.
        if _traced_tensorflow_training():
            return _tensorflow_fused(_gelu_erfc, _gelu_erfc_gradient, x)
        return _gelu_erf(x)
    if keras.config.backend() == "torch":
        return _torch_gelu(x, approximate)
    return ops.gelu(x, approximate=approximate)


def _torch_gelu(x, approximate):
    """GELU on torch, exact where torch 2.13's CPU kernel is not.

    That kernel gives gelu(3e38) = inf in float32 and gelu(-inf) = NaN on some machines.
    Past |x| = 39, gelu is x or 0 even in float64, so the exact form shows the kernel only
    [-39, 39] (clipped, so no NaN gradient leaks through the select). That form is 3 more
    passes forward and 4 more backward, and eager torch's select is slow on a CPU, so an
    eager CPU call takes the kernel's output when its sum is finite (one read pass; the
    CPU computes synchronously), which every finite input below those extremes gives, and
    the exact form otherwise.
    """
    import torch

    if x.device.type == "cpu" and not torch.compiler.is_compiling():
        y = ops.gelu(x, approximate=approximate)
        if torch.isfinite(torch.sum(y.detach())):
            return y
    clipped = ops.gelu(ops.clip(x, -39.0, 39.0), approximate=approximate)
    return ops.where(x > 39.0, x, clipped)


def _gelu_erf(x):
    return ops.multiply(ops.multiply(0.5, x), ops.add(1.0, ops.erf(x / math.sqrt(2.0))))


def _gelu_erfc(x):
    """GELU as `tf.nn.gelu` writes it, `x/2 erfc(-x/sqrt(2))`: for x << 0, `1 + erf` cancels
    in float32 (XLA's erf even leaves gelu(-50) at -4e-6 instead of 0); erfc does not."""
    import tensorflow as tf

    return ops.multiply(ops.multiply(0.5, x), tf.math.erfc(x * -(1.0 / math.sqrt(2.0))))


def _gelu_erfc_gradient(x, upstream):
    """`Phi(x) + x phi(x)`, times the upstream gradient."""
    import tensorflow as tf

    cdf = ops.multiply(0.5, tf.math.erfc(x * -(1.0 / math.sqrt(2.0))))
    pdf = ops.multiply(ops.exp(ops.multiply(-0.5, ops.square(x))), 1.0 / math.sqrt(2.0 * math.pi))
    return ops.multiply(upstream, ops.add(cdf, ops.multiply(x, pdf)))


@_activation
def swish(x, beta=1.0):
    """Swish (Ramachandran et al. 2017): `x * sigmoid(beta * x)`; SiLU when beta = 1.

    Args:
        x: Floating-point input tensor.
        beta: Sharpness, a finite number >= 0 or a scalar tensor (the learned beta
            of `keras_relu.layers.Swish`). Default: 1.0.
    """
    x = _as_tensor(x, "swish")
    if isinstance(beta, (int, float)):
        beta = _checks.check_non_negative("beta", beta)
        if beta == 1.0:
            # A fused XLA form gains nothing here: tf.nn.silu's own gradient is as fast.
            return ops.silu(x)
        if beta == 0.0:  # x * sigmoid(0 * x) would be NaN at +-inf, where x / 2 is not.
            return ops.multiply(0.5, x)
    # A tensor beta (learned) of exactly 0 gives NaN at x = +-inf (0 * inf); guarding
    # that corner would cost two more passes over x on every call, so it is left.
    beta = ops.cast(beta, x.dtype)
    return ops.multiply(x, ops.sigmoid(ops.multiply(beta, x)))


silu = swish

__all__ = [
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "elu",
    "selu",
    "relu6",
    "crelu",
    "gelu",
    "swish",
    "silu",
]
