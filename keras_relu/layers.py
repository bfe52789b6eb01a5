"""Keras layers for the ReLU family.

Each layer validates its arguments, holds its state (PReLU's alpha, Swish's beta,
RReLU's seed) and calls the function of the same name in `keras_relu.activations`,
which is the only implementation of the formula. Stateless layers are built at
construction, as Keras's own activation layers are.
"""

import keras
import numpy as np

from keras_relu import _checks
from keras_relu import activations
from keras_relu._keras_integration import build_at_init

_register = keras.saving.register_keras_serializable(package="keras_relu")


class _ActivationLayer(keras.layers.Layer):
    """Plumbing shared by every layer here: masks pass through, shape is kept."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape

    @classmethod
    def from_config(cls, config):
        # Keras turns any constructor error into a TypeError; a config is data (possibly
        # hand-edited or hostile), so a value or key we refuse stays a ValueError naming it.
        try:
            return super().from_config(config)
        except Exception as error:
            cause = error.__context__ or error
            raise ValueError(f"Cannot load {cls.__name__} from its config: {cause}") from error


@_register
class ReLU(_ActivationLayer):
    """Rectified linear unit, a drop-in for `keras.layers.ReLU`.

    Formula:
    ```
    f(x) = max_value                          if x >= max_value
    f(x) = x                                  if threshold <= x < max_value
    f(x) = negative_slope * (x - threshold)   otherwise
    ```

    Shape: any; the output has the input's shape.

    Example:
    >>> layer = keras_relu.ReLU()
    >>> layer(np.array([-2.0, 0.0, 3.0]))  # [0., 0., 3.]

    Args:
        max_value: Saturation value, >= 0, or None. Default: None.
        negative_slope: Slope below `threshold`, >= 0. Default: 0.0.
        threshold: Where the unit turns on. Default: 0.0.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None:
            _checks.check_non_negative("max_value", max_value)
        self.max_value = max_value
        self.negative_slope = _checks.check_non_negative("negative_slope", negative_slope)
        self.threshold = _checks.check_finite("threshold", threshold)
        build_at_init(self)

    def call(self, inputs):
        return activations.relu(
            inputs,
            negative_slope=self.negative_slope,
            max_value=self.max_value,
            threshold=self.threshold,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_value": self.max_value,
                "negative_slope": self.negative_slope,
                "threshold": self.threshold,
            }
        )
        return config


@_register
class LeakyReLU(_ActivationLayer):
    """Leaky ReLU (Maas et al. 2013).

    Formula:
    ```
    f(x) = x                   if x > 0
    f(x) = negative_slope * x  otherwise
    ```

    The default slope, 0.01, follows PyTorch, JAX and the paper. Keras's own
    `keras.layers.LeakyReLU` defaults to 0.3 (and `keras.activations.leaky_relu`
    to 0.2): pass `negative_slope=0.3` to reproduce a Keras model.

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.LeakyReLU()(np.array([-2.0, 3.0]))  # [-0.02, 3.]

    Args:
        negative_slope: Slope for x <= 0, >= 0. Default: 0.01.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, negative_slope=0.01, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = _checks.check_non_negative("negative_slope", negative_slope)
        build_at_init(self)

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


@_register
class PReLU(_ActivationLayer):
    """Parametric ReLU with a learned slope per channel (He et al. 2015).

    Formula:
    ```
    f(x) = x          if x > 0
    f(x) = alpha * x  otherwise,  alpha learned
    ```

    Unlike `keras.layers.PReLU` (one alpha per element, initialised to 0), the
    default is the paper's: one alpha per channel of the last axis, shared over
    every other non-batch axis, initialised to 0.25. Spatial dimensions may
    therefore be `None`. The paper applies no weight decay to alpha: exclude it
    with `optimizer.exclude_from_weight_decay(var_names=["alpha"])`.

    Shape: any rank >= 2; the output has the input's shape. alpha has shape
    `(1, ..., 1, channels)` by default, or the input's shape without the batch
    axis and with 1 on each of `shared_axes`.

    Example:
    >>> layer = keras_relu.PReLU()
    >>> y = layer(np.ones((8, 32, 32, 16)))  # layer.alpha.shape == (1, 1, 16)

    Args:
        alpha_initializer: A number (a constant) or a Keras initializer for alpha.
            Default: 0.25.
        alpha_regularizer: Regularizer for alpha. Default: None.
        alpha_constraint: Constraint for alpha. Default: None.
        shared_axes: Axes (batch axis 0 excluded, negative counted from the end)
            along which alpha is shared, with the meaning of `keras.layers.PReLU`.
            Default: None, which shares over all axes but the last.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self,
        alpha_initializer=0.25,
        alpha_regularizer=None,
        alpha_constraint=None,
        shared_axes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(alpha_initializer, (int, float)) and not isinstance(alpha_initializer, bool):
            alpha_initializer = keras.initializers.Constant(
                _checks.check_finite("alpha_initializer", alpha_initializer)
            )
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        if isinstance(self.alpha_initializer, keras.initializers.Constant):
            # Keras's Constant takes any value; a NaN slope would poison every negative input.
            value = self.alpha_initializer.value
            if not np.all(np.isfinite(np.asarray(value, dtype="float64"))):
                raise ValueError(
                    "`alpha_initializer` must be finite. "
                    f"Received: alpha_initializer=Constant(value={value!r})"
                )
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        if shared_axes is not None:
            axes = shared_axes if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            shared_axes = [_checks.check_int("shared_axes", axis) for axis in axes]
            if 0 in shared_axes:
                raise ValueError(
                    "`shared_axes` must not contain the batch axis 0. "
                    f"Received: shared_axes={shared_axes!r}"
                )
        self.shared_axes = shared_axes

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(
                f"PReLU needs inputs of rank >= 2 (batch, ..., channels). "
                f"Received: input_shape={input_shape}"
            )
        if self.shared_axes is None:
            shared = set(range(1, rank - 1))
        else:
            shared = set()
            for axis in self.shared_axes:
                try:
                    shared.add(_checks.normalize_axis("shared_axes", axis, rank, False))
                except ValueError as error:
                    raise ValueError(
                        f"{error} (Received: shared_axes={self.shared_axes!r})"
                    ) from None
        param_shape = [1 if axis in shared else input_shape[axis] for axis in range(1, rank)]
        if None in param_shape:
            raise ValueError(
                "PReLU needs a known size on every axis that has its own alpha. "
                f"Received: input_shape={input_shape}, shared_axes={self.shared_axes!r}"
            )
        self.alpha = self.add_weight(
            shape=param_shape,
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )
        self.input_spec = keras.layers.InputSpec(
            ndim=rank,
            axes={axis: input_shape[axis] for axis in range(1, rank) if axis not in shared},
        )

    def call(self, inputs):
        return activations.prelu(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes,
            }
        )
        return config


@_register
class RReLU(_ActivationLayer):
    """Randomized leaky ReLU (Xu et al. 2015).

    Formula:
    ```
    training:   f(x) = x if x > 0 else a * x,  a ~ U(lower, upper) per element
    inference:  f(x) = x if x > 0 else (lower + upper) / 2 * x
    ```

    The slopes come from a `keras.random.SeedGenerator`, so a seeded layer repeats
    its training-mode outputs on a backend and works inside compiled functions.
    The inference slope is PyTorch's `(lower + upper) / 2`.

    Shape: any; the output has the input's shape.

    Example:
    >>> layer = keras_relu.RReLU(seed=1)
    >>> y = layer(np.array([-3.0, 3.0]), training=True)  # [-3a, 3.], a in [1/8, 1/3]

    Args:
        lower: Lower bound of the slope, >= 0. Default: 1/8.
        upper: Upper bound of the slope, >= `lower`. Default: 1/3.
        seed: Integer seed for the slopes, or None. Default: None.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self, lower=activations.RRELU_LOWER, upper=activations.RRELU_UPPER, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.lower, self.upper = activations.check_rrelu_bounds(lower, upper)
        self.seed = _checks.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        build_at_init(self)

    def call(self, inputs, training=False):
        return activations.rrelu(
            inputs, self.lower, self.upper, training=training, seed=self.seed_generator
        )

    def get_config(self):
        config = super().get_config()
        config.update({"lower": self.lower, "upper": self.upper, "seed": self.seed})
        return config


@_register
class ELU(_ActivationLayer):
    """Exponential linear unit (Clevert et al. 2015).

    Formula:
    ```
    f(x) = x                     if x > 0
    f(x) = alpha * (exp(x) - 1)  otherwise
    ```

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.ELU()(np.array([-1.0, 2.0]))  # [-0.632, 2.]

    Args:
        alpha: Saturation value for large negative inputs, >= 0. Default: 1.0.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _checks.check_non_negative("alpha", alpha)
        build_at_init(self)

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@_register
class SELU(_ActivationLayer):
    """Scaled ELU (Klambauer et al. 2017).

    Formula:
    ```
    f(x) = scale * x                     if x > 0
    f(x) = scale * alpha * (exp(x) - 1)  otherwise
    ```
    with the fixed `alpha = 1.6732632423543772` and `scale = 1.0507009873554805`.
    Self-normalizing with `kernel_initializer="lecun_normal"` and no BatchNorm.

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.SELU()(np.array([-1.0, 2.0]))  # [-1.111, 2.101]

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        build_at_init(self)

    def call(self, inputs):
        return activations.selu(inputs)

    def get_config(self):
        # Explicit, as every layer here: Keras's automatic config fails on a DTypePolicy
        # object (what a swap or a mixed-precision model passes as `dtype`).
        return super().get_config()


@_register
class ReLU6(_ActivationLayer):
    """ReLU capped at 6 (Krizhevsky 2010; MobileNet).

    Formula:
    ```
    f(x) = min(max(0, x), 6)
    ```

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.ReLU6()(np.array([-1.0, 3.0, 9.0]))  # [0., 3., 6.]

    Args:
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        build_at_init(self)

    def call(self, inputs):
        return activations.relu6(inputs)

    def get_config(self):
        # Explicit, as every layer here: Keras's automatic config fails on a DTypePolicy
        # object (what a swap or a mixed-precision model passes as `dtype`).
        return super().get_config()


@_register
class CReLU(_ActivationLayer):
    """Concatenated ReLU (Shang et al. 2016): `axis` doubles in size.

    Formula:
    ```
    f(x) = concatenate([relu(x), relu(-x)], axis)
    ```
    Values and channel order are those of `tf.nn.crelu`.

    Shape: input `(..., C, ...)` with C on `axis`; output `(..., 2 * C, ...)`.

    Example:
    >>> keras_relu.CReLU()(np.array([[1.0, -2.0]]))  # [[1., 0., 0., 2.]]

    Args:
        axis: The axis to double (not the batch axis); -1 is channels last, use 1
            for channels-first feature maps. Default: -1.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _checks.check_int("axis", axis)
        if self.axis == 0:
            raise ValueError(f"`axis` must not be the batch axis 0. Received: axis={axis!r}")
        build_at_init(self)

    def call(self, inputs):
        # Checked per input: a negative axis only finds the batch axis once the rank is known.
        axis = _checks.normalize_axis("axis", self.axis, len(inputs.shape), allow_batch_axis=False)
        return activations.crelu(inputs, axis=axis)

    def compute_mask(self, inputs, mask=None):
        # A mask covers the leading axes (a sequence's is (batch, time)). Doubling one of
        # them doubles the mask there, as `keras.layers.Concatenate` does; doubling the
        # channels leaves it as it is.
        if mask is None:
            return None
        axis = _checks.normalize_axis("axis", self.axis, len(inputs.shape), allow_batch_axis=False)
        if axis >= len(mask.shape):
            return mask
        return keras.ops.concatenate([mask, mask], axis=axis)

    def compute_output_shape(self, input_shape):
        axis = _checks.normalize_axis("axis", self.axis, len(input_shape), allow_batch_axis=False)
        output_shape = list(input_shape)
        if output_shape[axis] is not None:
            output_shape[axis] *= 2
        return tuple(output_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@_register
class GELU(_ActivationLayer):
    """Gaussian error linear unit (Hendrycks and Gimpel 2016).

    Formula:
    ```
    f(x) = x * Phi(x)                                              (exact)
    f(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))  (approximate)
    ```
    Phi is the standard normal CDF. Exact by default, as in PyTorch and
    `keras.activations.gelu` (`keras.ops.gelu` and JAX default to the approximation).

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.GELU()(np.array([-1.0, 1.0]))  # [-0.159, 0.841]

    Args:
        approximate: Use the tanh approximation. Default: False.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = _checks.check_bool("approximate", approximate)
        build_at_init(self)

    def call(self, inputs):
        return activations.gelu(inputs, approximate=self.approximate)

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


@_register
class Swish(_ActivationLayer):
    """Swish (Ramachandran et al. 2017), SiLU when beta = 1; beta may be learned.

    Formula:
    ```
    f(x) = x * sigmoid(beta * x)
    ```

    With `learn_beta=True` beta is a trainable scalar weight named "beta",
    initialised to `beta` and kept in the variable dtype (float32 under mixed
    precision).

    Shape: any; the output has the input's shape.

    Example:
    >>> keras_relu.Swish()(np.array([-1.0, 1.0]))  # [-0.269, 0.731]

    Args:
        beta: Sharpness, a finite number >= 0. Default: 1.0.
        learn_beta: Train beta with the model. Default: False.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, beta=1.0, learn_beta=False, **kwargs):
        super().__init__(**kwargs)
        self.beta = _checks.check_non_negative("beta", beta)
        self.learn_beta = _checks.check_bool("learn_beta", learn_beta)
        if learn_beta:
            # A scalar needs no input shape, so the layer is complete here.
            self.beta_weight = self.add_weight(
                shape=(), name="beta", initializer=keras.initializers.Constant(self.beta)
            )
        build_at_init(self)

    def call(self, inputs):
        return activations.swish(inputs, beta=self.beta_weight if self.learn_beta else self.beta)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "learn_beta": self.learn_beta}


SiLU = Swish

__all__ = [
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "ELU",
    "SELU",
    "ReLU6",
    "CReLU",
    "GELU",
    "Swish",
    "SiLU",
]
