"""The one table of variants: names, layers, functions and their defaults.

It drives `keras_relu.get`, the `activation="..."` strings, the README table and
the tests' parametrisation, so adding a variant here is all it takes.
"""

import dataclasses
import inspect
from collections.abc import Callable

import keras

from keras_relu import _keras_integration
from keras_relu import activations
from keras_relu import layers


@dataclasses.dataclass(frozen=True)
class Variant:
    """One member of the family.

    Attributes:
        name: Canonical lower-case name, as `keras_relu.get` takes it.
        layer: The layer class.
        function: The functional form.
        formula: One-line formula for documentation.
        aliases: Other names `keras_relu.get` accepts.
        by_name: Whether `function(x)` alone is the activation, so that it can be
            used as `activation="name"` (False where it needs a weight or a
            training flag: PReLU, RReLU).
    """

    name: str
    layer: type
    function: Callable
    formula: str
    aliases: tuple = ()
    by_name: bool = True

    @property
    def defaults(self):
        """The layer's constructor arguments and their defaults."""
        parameters = inspect.signature(self.layer.__init__).parameters.values()
        return {
            p.name: p.default
            for p in parameters
            if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
        }


VARIANTS = (
    Variant("relu", layers.ReLU, activations.relu, "max(0, x)"),
    Variant(
        "leaky_relu",
        layers.LeakyReLU,
        activations.leaky_relu,
        "x if x > 0 else a*x",
        ("leakyrelu", "lrelu"),
    ),
    Variant(
        "prelu",
        layers.PReLU,
        activations.prelu,
        "x if x > 0 else a*x, a learned per channel",
        by_name=False,
    ),
    Variant(
        "rrelu",
        layers.RReLU,
        activations.rrelu,
        "x if x > 0 else a*x, a ~ U(lower, upper) in training",
        by_name=False,
    ),
    Variant("elu", layers.ELU, activations.elu, "x if x > 0 else alpha*(exp(x)-1)"),
    Variant("selu", layers.SELU, activations.selu, "scale*elu(x, alpha), fixed scale and alpha"),
    Variant("relu6", layers.ReLU6, activations.relu6, "min(max(0, x), 6)"),
    Variant(
        "crelu", layers.CReLU, activations.crelu, "concat(relu(x), relu(-x)); the axis doubles"
    ),
    Variant("gelu", layers.GELU, activations.gelu, "x*Phi(x)"),
    Variant("swish", layers.Swish, activations.swish, "x*sigmoid(beta*x)", ("silu",)),
)

_BY_NAME = {name: v for v in VARIANTS for name in (v.name, *v.aliases)}


def names():
    """The canonical names, in registry order."""
    return [variant.name for variant in VARIANTS]


def variant(name):
    """Returns the `Variant` called `name` (case-insensitive, aliases accepted)."""
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a string. Received: name={name!r}")
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown activation {name!r}. Valid names: {', '.join(sorted(_BY_NAME))}."
        ) from None


def get(identifier, **kwargs):
    """Returns a new activation layer.

    Args:
        identifier: A name from `keras_relu.names()` (or an alias such as "silu"),
            or a layer class, which is instantiated. A layer instance is returned
            as it is (then `kwargs` must be empty).
        **kwargs: Arguments for the layer's constructor.

    Example:
    >>> keras_relu.get("prelu", shared_axes=[1, 2])
    >>> keras_relu.get("leaky_relu", negative_slope=0.1)
    """
    if isinstance(identifier, keras.layers.Layer):
        if kwargs:
            raise ValueError(
                f"Arguments were given with a layer instance; they would be ignored. "
                f"Received: identifier={identifier!r}, kwargs={kwargs!r}"
            )
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, keras.layers.Layer):
        return identifier(**kwargs)
    return variant(identifier).layer(**kwargs)


def stateless_functions():
    """`{name: function}` for every variant whose function alone is the activation."""
    return {v.name: v.function for v in VARIANTS if v.by_name}


def markdown_table():
    """The variants as a Markdown table: README.md holds this table (a test checks it)."""
    strings = _keras_string_names()
    rows = [
        "| name | layer and defaults | function | `activation=` string | formula |",
        "|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        names = ", ".join(f"`{name}`" for name in (v.name, *v.aliases))
        arguments = ", ".join(f"{key}={value!r}" for key, value in v.defaults.items())
        layer = f"`{v.layer.__name__}({arguments})`"
        function = f"`activations.{v.function.__name__}`"
        string = strings.get(v.name, "no: layer only")
        rows.append(f"| {names} | {layer} | {function} | {string} | {v.formula} |")
    return "\n".join(rows)


def _keras_string_names():
    """Which `activation=` strings mean what: Keras's own function or ours."""
    return {
        v.name: "`keras_relu`'s" if keras.activations.get(v.name) is v.function else "Keras's own"
        for v in VARIANTS
        if v.by_name
    }


_FUNCTION_NAMES = {v.function: v.name for v in VARIANTS}


def canonical_name(name):
    """The registry name for `name` ("silu" is "swish"), or `name` in lower case."""
    try:
        return variant(name).name
    except ValueError:
        return name.lower()


def function_name(function):
    """The registry name of an activation function ("silu" is "swish"), or None.

    Keras's functions are named by their `activation=` string, this package's by
    the registry; anything else (a lambda, a custom function) has no name.
    """
    if not callable(function) or function is keras.activations.linear:
        return None
    if function in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[function]
    name = getattr(function, "__name__", None)
    try:
        if not isinstance(name, str) or keras.activations.get(name) is not function:
            return None
    except (ValueError, TypeError):
        return None
    return canonical_name(name)


def operation_function_name(operation):
    """What a `keras.ops` call or a `keras_relu.activations` call in a functional graph
    computes (a registry name, "sigmoid", "softmax"), or None for any other operation.

    `swap_activations` replaces these nodes and `diagnostics.activation_stats` measures
    them: one recognition for both.
    """
    if isinstance(operation, activations.ActivationCall):
        return canonical_name(operation.function)
    return _keras_integration.activation_op_name(operation)
