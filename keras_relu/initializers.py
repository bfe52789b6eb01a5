"""Initializers against the dying ReLU: `RandomizedAsymmetric` (Lu et al. 2019).

>>> import keras, keras_relu
>>> keras.layers.Dense(4, activation="relu", kernel_initializer="randomized_asymmetric")
>>> keras_relu.initializers.RandomizedAsymmetric(seed=0)(shape=(3, 4))
"""

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
    distribution, the others from a symmetric one. Per output unit `j` (the kernel's
    last axis), with `fan_in` the product of the other axes (Dense `(in, units)`:
    `in`; a convolution `(*spatial, in, filters)`: `prod(spatial) * in`)::

        k_j ~ Uniform{0, ..., fan_in - 1}
        w[i, j] ~ Beta(positive_alpha, positive_beta)    if i == k_j  (in (0, 1))
        w[i, j] ~ Normal(0, (scale / sqrt(fan_in))^2)     otherwise

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
    """

    def __init__(
        self,
        scale=PAPER_SCALE,
        positive_alpha=PAPER_POSITIVE_ALPHA,
        positive_beta=PAPER_POSITIVE_BETA,
        seed=None,
    ):
        self.scale = _positive("scale", scale)
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
        if len(shape) < 2 or any(not isinstance(d, int) or d < 1 for d in shape):
            raise ValueError(
                "RandomizedAsymmetric draws a kernel: `shape` must be `(*fan_in_axes, units)` "
                f"with at least two positive dimensions. Received: shape={shape}. Use "
                "bias_initializer='zeros' (or another initializer) for a bias."
            )
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        fan_in, units = math.prod(shape[:-1]), shape[-1]
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
        return ops.reshape(ops.where(chosen, positive, symmetric), shape)

    def get_config(self):
        return {
            "scale": self.scale,
            "positive_alpha": self.positive_alpha,
            "positive_beta": self.positive_beta,
            "seed": keras.saving.serialize_keras_object(self._init_seed),
        }


def _positive(name, value):
    if _checks.check_finite(name, value) <= 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")
    return float(value)


# The names `kernel_initializer=` takes once keras_relu is imported.
INITIALIZERS_BY_NAME = {
    "randomized_asymmetric": RandomizedAsymmetric,
    "RandomizedAsymmetric": RandomizedAsymmetric,
}
