"""Initializers against the dying ReLU: `RandomizedAsymmetric` (Lu et al. 2019).

>>> import keras, keras_relu
>>> keras.layers.Dense(4, activation="relu", kernel_initializer="randomized_asymmetric")
>>> keras_relu.initializers.RandomizedAsymmetric(seed=0)(shape=(3, 4))
"""

import copy
import math
import random

import keras
from keras import ops

from keras_relu import _checks

# Lu et al.'s constants (see `RandomizedAsymmetric`): sigma = 0.6007 / sqrt(fan_in), Beta(2, 1).
PAPER_SCALE = 0.6007
PAPER_POSITIVE_ALPHA = 2.0
PAPER_POSITIVE_BETA = 1.0


@keras.saving.register_keras_serializable(package="keras_relu")
class RandomizedAsymmetric(keras.initializers.Initializer):
    """Randomized asymmetric initialization (RAI) of a ReLU layer's kernel.

    Lu, Shin, Su and Karniadakis ("Dying ReLU and Initialization: Theory and
    Numerical Examples", arXiv 1903.06733; Commun. Comput. Phys. 28(5), 2020) prove
    that a deep ReLU network of fixed width initialized from symmetric distributions
    is, with probability tending to 1 with depth, a constant function ("born dead"),
    and propose RAI: for each unit, one incoming parameter drawn from a positive
    distribution, the others from a symmetric one. Per output unit `j` (an index of
    the kernel's `output_axes`), with `fan_in` the product of its `input_axes` (the
    unit's incoming weights)::

        k_j ~ Uniform{0, ..., fan_in - 1}
        w[i, j] ~ Beta(positive_alpha, positive_beta)    if i == k_j  (in (0, 1))
        w[i, j] ~ Normal(0, (scale / sqrt(fan_in))^2)     otherwise

    Where the units lie: Keras gives an initializer only the shape, so the layer that
    creates the weight tells it (`Layer.add_weight` hands it the layer, as `EinsumDense`
    gives `VarianceScaling` its `input_axes` and `output_axes`):

    ```
    layer (weight)                                     kernel                unit axes
    Dense, Conv1D/2D/3D, SeparableConv's pointwise,    (..., in, units)      last
      LSTM/GRU/SimpleRNN/ConvLSTM (both kernels)
    Conv1DTranspose/2DTranspose/3DTranspose            (*k, filters, in)     -2
    DepthwiseConv1D/2D, SeparableConv's depthwise      (*k, in, multiplier)  -2 and -1
    EinsumDense (MultiHeadAttention's too)             its equation          those in the output
    ```
    Any other Keras (or keras_relu) layer's weight (`Embedding`, `PReLU`'s alpha) is
    refused when built: its units are not known. A layer of your own, or a call
    `RandomizedAsymmetric()(shape)`, takes the last axis as the units (as Keras's
    `compute_fans` does) unless `output_axes`/`input_axes` say otherwise.

    Side effect at `fan_in = 1` (a first layer on 1-D inputs, `Dense(n)` on `(batch,
    1)`): each unit's only weight is its positive entry, so every first-layer weight is
    > 0. With zero biases (Keras's default) every unit is then `relu(w_j x)`, 0 for all
    x <= 0: the network is constant on x <= 0 at initialization, and gets no gradient
    there until the biases move. Give such a layer non-zero biases or another
    initializer.

    Changed from the paper to fit Keras's separate kernel and bias initializers: the
    paper draws each unit's `fan_in` weights and its bias as one row of `fan_in + 1`
    entries, and the positive entry may be the bias. Here the positive entry is always
    one of the kernel's entries, and the bias is left to `bias_initializer` (Keras's
    default: zeros). `examples/DYING_RELU.md` measures the born-dead rate of both.

    Seeds behave as in Keras's own initializers: an instance seeded with an integer, or
    unseeded, draws the same values at every call (unseeded: a seed drawn once from
    Python's `random`, which `keras.utils.set_random_seed` seeds); a
    `keras.random.SeedGenerator` advances at each call. For independent draws, use a
    new instance with its own seed per draw.

    Example:

    >>> layer = keras.layers.Dense(
    ...     8, activation="relu", kernel_initializer=RandomizedAsymmetric(seed=1)
    ... )
    >>> keras.layers.Dense(8, activation="relu", kernel_initializer="randomized_asymmetric")

    Args:
        scale: The symmetric entries' standard deviation times `sqrt(fan_in)`.
            Default: 0.6007 (the paper's value).
        positive_alpha: The positive entry's Beta distribution's first shape
            parameter. Default: 2.0 (the paper's Beta(2, 1)).
        positive_beta: Its second shape parameter. Default: 1.0.
        seed: An integer, a `keras.random.SeedGenerator` or None. Default: None.
        input_axes: The kernel axes of each unit's incoming weights (Keras's
            `VarianceScaling` argument), or None: the axes not in `output_axes`.
            Default: None.
        output_axes: The kernel axes that index the output units, or None: set by
            the layer (table above), else the last axis. Default: None.

    Raises:
        ValueError: Where a Keras layer builds a weight whose units are not known
            (and no axes were given), and for axes that do not name every axis of
            the kernel once.
    """

    def __init__(
        self,
        scale=PAPER_SCALE,
        positive_alpha=PAPER_POSITIVE_ALPHA,
        positive_beta=PAPER_POSITIVE_BETA,
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        self.scale = _positive("scale", scale)
        self.input_axes = _axes("input_axes", input_axes)
        self.output_axes = _axes("output_axes", output_axes)
        self.positive_alpha = _positive("positive_alpha", positive_alpha)
        self.positive_beta = _positive("positive_beta", positive_beta)
        self._init_seed = seed
        if seed is None:
            # As Keras's `make_default_seed`: fixed per instance, set by set_random_seed.
            seed = random.randint(1, int(1e9))
        elif isinstance(seed, dict):
            seed = keras.saving.deserialize_keras_object(seed)
        elif isinstance(seed, int) and not isinstance(seed, bool):
            _checks.check_seed(seed)
        elif not isinstance(seed, keras.random.SeedGenerator):
            raise ValueError(
                "`seed` must be an integer, a `keras.random.SeedGenerator` or None. "
                f"Received: seed={seed!r}"
            )
        self.seed = seed

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        unset = self.input_axes is None and self.output_axes is None
        if (
            (unset and len(shape) < 2)
            or not shape
            or any(not isinstance(d, int) or d < 1 for d in shape)
        ):
            raise ValueError(
                "RandomizedAsymmetric draws a kernel: `shape` must be `(*fan_in_axes, units)` "
                f"with at least two positive dimensions. Received: shape={shape}. Use "
                "bias_initializer='zeros' (or another initializer) for a bias."
            )
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        input_axes, output_axes = self._layout(shape)
        fan_in = math.prod(shape[axis] for axis in input_axes)
        units = math.prod(shape[axis] for axis in output_axes)
        # Three draws from one seed: an integer seed gets its own generator per call,
        # so that every call with it draws the same, and the draws are not one stream.
        seed = self.seed
        if not isinstance(seed, keras.random.SeedGenerator):
            seed = keras.random.SeedGenerator(seed)
        symmetric = keras.random.normal(
            (fan_in, units), stddev=self.scale / math.sqrt(fan_in), dtype=dtype, seed=seed
        )
        positive = keras.random.beta(
            (1, units), self.positive_alpha, self.positive_beta, dtype=dtype, seed=seed
        )
        position = keras.random.randint((units,), 0, fan_in, seed=seed)
        chosen = ops.transpose(ops.one_hot(position, fan_in, dtype="bool"))
        kernel = ops.where(chosen, positive, symmetric)
        # Drawn as (incoming weights, units), then laid out as the layer's kernel.
        order = input_axes + output_axes
        kernel = ops.reshape(kernel, tuple(shape[axis] for axis in order))
        if order != tuple(range(len(shape))):
            kernel = ops.transpose(kernel, tuple(order.index(a) for a in range(len(shape))))
        return kernel

    def _layout(self, shape):
        """`(input_axes, output_axes)` for a kernel of `shape`, as non-negative tuples."""
        rank = len(shape)
        given = {}
        for name in ("input_axes", "output_axes"):
            axes = getattr(self, name)
            if axes is not None:
                if any(not -rank <= axis < rank for axis in axes):
                    raise ValueError(
                        f"`{name}` must name axes of the kernel, of shape {shape}. "
                        f"Received: {name}={list(axes)}"
                    )
                given[name] = tuple(sorted({axis % rank for axis in axes}))
        if not given:
            return tuple(range(rank - 1)), (rank - 1,)
        rest = tuple(axis for axis in range(rank) if axis not in next(iter(given.values())))
        input_axes = given.get("input_axes", rest)
        output_axes = given.get("output_axes", rest)
        if sorted(input_axes + output_axes) != list(range(rank)):
            raise ValueError(
                "`input_axes` and `output_axes` must name every axis of the kernel once "
                f"(shape {shape}). Received: input_axes={self.input_axes}, "
                f"output_axes={self.output_axes}"
            )
        return input_axes, output_axes

    def get_config(self):
        config = {
            "scale": self.scale,
            "positive_alpha": self.positive_alpha,
            "positive_beta": self.positive_beta,
            "seed": keras.saving.serialize_keras_object(self._init_seed),
        }
        for name in ("input_axes", "output_axes"):
            if getattr(self, name) is not None:  # Saved files without them stay as they were.
                config[name] = list(getattr(self, name))
        return config


# Where the output units lie in the kernels of Keras's layers: `(classes, {weight:
# unit axes})`, the most specific classes first.
_KERAS_UNIT_AXES = (
    (
        (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose),
        {"kernel": (-2,)},
    ),
    ((keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D), {"kernel": (-2, -1)}),
    (
        (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D),
        {"depthwise_kernel": (-2, -1), "pointwise_kernel": (-1,)},
    ),
    (
        (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D),
        {"kernel": (-1,)},
    ),
)
# Libraries whose layers are all known here: any other weight of theirs is refused.
_KNOWN_LIBRARIES = ("keras", "keras_relu")


def _keras_output_axes(layer, name):
    """The unit axes of weight `name` of `layer`; None for a layer of another library
    (the last axis, by convention); raises for a Keras layer's weight not known."""
    for classes, axes_by_weight in _KERAS_UNIT_AXES:
        if isinstance(layer, classes):
            if name in axes_by_weight:
                return axes_by_weight[name]
            break
    else:
        if isinstance(layer, keras.layers.EinsumDense) and name == "kernel":
            inputs, output = layer.equation.replace(" ", "").split("->")
            kernel_spec = inputs.split(",")[1]
            return tuple(i for i, letter in enumerate(kernel_spec) if letter in output)
        library = type(layer).__module__.split(".")[0]
        if library not in _KNOWN_LIBRARIES:
            return None
        # Recurrent cells (they declare a `state_size`): `(in, gates * units)`.
        if hasattr(layer, "state_size") and name in ("kernel", "recurrent_kernel"):
            return (-1,)
    raise ValueError(
        f"RandomizedAsymmetric cannot tell which axes of the weight {name!r} of "
        f"{type(layer).__name__} {layer.name!r} index its output units. Pass them: "
        "RandomizedAsymmetric(output_axes=[...]) (the other axes are each unit's incoming "
        "weights), or use another initializer."
    )


def for_layer_weight(layer, name, initializer):
    """What `Layer.add_weight` draws weight `name` of `layer` with (installed by
    `keras_relu._keras_integration`): a `RandomizedAsymmetric` without axes is told the
    layer's unit axes (a copy, with the same seed); any other initializer as given."""
    if not isinstance(initializer, RandomizedAsymmetric):
        return initializer
    if initializer.input_axes is not None or initializer.output_axes is not None:
        return initializer
    output_axes = _keras_output_axes(layer, name)
    if output_axes is None:
        return initializer
    bound = copy.copy(initializer)
    bound.output_axes = output_axes
    return bound


def _axes(name, value):
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or not value
        or any(isinstance(axis, bool) or not isinstance(axis, int) for axis in value)
    ):
        raise ValueError(
            f"`{name}` must be None or a non-empty list of int axes. Received: {name}={value!r}"
        )
    return tuple(value)


def _positive(name, value):
    if _checks.check_finite(name, value) <= 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")
    return float(value)


# The names `kernel_initializer=` takes once keras_relu is imported.
INITIALIZERS_BY_NAME = {
    "randomized_asymmetric": RandomizedAsymmetric,
    "RandomizedAsymmetric": RandomizedAsymmetric,
}
