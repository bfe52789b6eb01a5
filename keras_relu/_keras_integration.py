"""The one module that touches Keras internals (tested against Keras 3.15).

Keras 3 has no public way to do these five things, so they are done here and
nowhere else, each checked when it is installed so that a Keras release that
changes what they rely on fails at `import keras_relu` with a message, not
later with a wrong model:

1. `build_at_init`: Keras marks stateless layers built at construction through
   the private `Layer._build_at_init`; its layer contract test expects it.
2. Activation strings: `keras.activations.get("name")` reads only Keras's own
   table `keras.src.activations.ALL_OBJECTS_DICT`, so our stateless functions
   whose names Keras lacks (today only "crelu") are added to it. Keras's own
   names keep meaning Keras's functions.
3. Shapes under `activation="crelu"`: CReLU doubles the last axis, but Dense,
   EinsumDense, the convolutions and Activation declare their output width from
   `units`/`filters`/the input. Their `compute_output_shape` is wrapped to double
   the last axis when their activation is `crelu`, so the declared shape, the
   summary, the runtime shape and the next layer agree. Layers where a doubled
   width cannot work (recurrent cells, whose state has `units` width) and
   channels-first convolutions (CReLU would double width, not channels) reject
   `crelu` at construction with an error naming `keras_relu.layers.CReLU`.
4. `tensorflow_uniform`: `keras.random.uniform` with TensorFlow's Philox algorithm
   named (Keras leaves it on "auto_select", slow under XLA on CPU); it reuses Keras's
   private seed handling so that a `SeedGenerator` advances as Keras's would.
5. `is_functional`, `sublayers` and `activation_op_name`, for
   `keras_relu.swap_activations`: whether a model has a graph of layer calls to
   rebuild (a Functional model, subclasses such as keras-hub's backbones
   included), every layer nested inside a layer (to find activations a subclassed
   layer would rebuild from its config), and which activation a `keras.ops` call
   in a functional graph (`x = keras.ops.relu(x)`) computes.
"""

import functools
import importlib
import inspect

import keras

from keras_relu import activations

# Layers whose output's last axis is what `activation` sees: (module, class).
_SHAPE_LAYERS = (
    ("keras.src.layers.core.dense", "Dense"),
    ("keras.src.layers.core.einsum_dense", "EinsumDense"),
    ("keras.src.layers.convolutional.base_conv", "BaseConv"),
    ("keras.src.layers.convolutional.base_conv_transpose", "BaseConvTranspose"),
    ("keras.src.layers.convolutional.base_depthwise_conv", "BaseDepthwiseConv"),
    ("keras.src.layers.convolutional.base_separable_conv", "BaseSeparableConv"),
    ("keras.src.layers.activations.activation", "Activation"),
)
# Layers that take an activation but cannot change their output width.
_FIXED_WIDTH_LAYERS = (
    ("keras.src.layers.rnn.simple_rnn", "SimpleRNNCell"),
    ("keras.src.layers.rnn.lstm", "LSTMCell"),
    ("keras.src.layers.rnn.gru", "GRUCell"),
    ("keras.src.layers.rnn.conv_lstm", "ConvLSTMCell"),
)
_ACTIVATION_ATTRIBUTES = ("activation", "recurrent_activation")
_PATCHED = "_keras_relu_patched"


class KerasIntegrationError(ImportError):
    """This Keras release no longer has what `keras_relu` hooks into."""


def _fail(what):
    raise KerasIntegrationError(
        f"keras_relu cannot integrate with Keras {keras.__version__}: {what}. "
        "keras_relu is tested with Keras 3.15; please report this with your Keras version."
    )


def build_at_init(layer):
    """Marks a layer without `build` built now, as Keras's stateless layers are."""
    layer._build_at_init()


def tensorflow_uniform(shape, minval, maxval, dtype, seed):
    """`keras.random.uniform` on TensorFlow, with `alg="philox"` instead of "auto_select".

    Under XLA on CPU, "auto_select" with a seed read from a variable (as a SeedGenerator's
    is) takes 1.2-1.8 s for 4M numbers; Philox takes 20-30 ms (benchmarks/bench_random.py).
    Eager TensorFlow already means Philox by "auto_select", so eager draws are Keras's own.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow.random import _cast_seed
    from keras.src.random.seed_generator import draw_seed

    return tf.random.stateless_uniform(
        shape,
        seed=_cast_seed(draw_seed(seed)),
        minval=tf.cast(minval, dtype),
        maxval=tf.cast(maxval, dtype),
        dtype=dtype,
        alg="philox",
    )


def is_functional(model):
    """Whether `model` is a Functional model: a graph of layer calls on `keras.Input`s."""
    return isinstance(model, _load_class("keras.src.models.functional", "Functional"))


def sublayers(layer):
    """Every layer tracked inside `layer`, recursively, `layer` itself excluded."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


# The operations `keras.ops.relu(x)` and its kind leave in a functional graph, by
# the registry name of what they compute.
_ACTIVATION_OPS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Silu": "swish",
    "Gelu": "gelu",
    "Elu": "elu",
    "Selu": "selu",
    "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid",
    "Softmax": "softmax",
}


def activation_op_name(operation):
    """The name of the activation a graph operation computes, or None."""
    for class_name, name in _ACTIVATION_OPS.items():
        if type(operation) is _load_class("keras.src.ops.nn", class_name):
            return name
    return None


def _check_model_introspection():
    if not isinstance(_load_class("keras.src.models.functional", "Functional"), type):
        _fail("keras.src.models.functional.Functional is not a class")
    for class_name in _ACTIVATION_OPS:
        _load_class("keras.src.ops.nn", class_name)
    if not callable(getattr(keras.layers.Layer, "_flatten_layers", None)):
        _fail("Layer._flatten_layers is gone")


def _check_tensorflow_uniform():
    if keras.config.backend() != "tensorflow":
        return
    try:
        from keras.src.backend.tensorflow.random import _cast_seed  # noqa: F401
        from keras.src.random.seed_generator import draw_seed  # noqa: F401
    except ImportError as error:
        _fail(f"Keras's TensorFlow seed handling moved ({error})")


def _load_class(module_name, class_name):
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        _fail(f"{module_name}.{class_name} not found")


def _crelu_misuse(layer, reason):
    return ValueError(
        f"{type(layer).__name__} cannot take activation='crelu': {reason}. CReLU "
        "doubles its input's channel axis; add a `keras_relu.layers.CReLU(axis=...)` "
        "layer after this one instead."
    )


def _check_crelu_use(layer, fixed_width):
    for attribute in _ACTIVATION_ATTRIBUTES:
        if getattr(layer, attribute, None) is activations.crelu:
            if fixed_width:
                raise _crelu_misuse(layer, "its output and state width is fixed by `units`")
            if getattr(layer, "data_format", "channels_last") == "channels_first":
                raise _crelu_misuse(
                    layer, "with data_format='channels_first' it would double the last spatial axis"
                )


def _wrap_init(cls, fixed_width):
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _check_crelu_use(self, fixed_width)

    # Keras's Operation.__new__ reads the argspec, which ignores __wrapped__.
    __init__.__signature__ = inspect.signature(original)
    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__


def _wrap_compute_output_shape(cls):
    if "compute_output_shape" not in vars(cls):
        _fail(f"{cls.__name__} no longer defines compute_output_shape")
    original = cls.compute_output_shape

    @functools.wraps(original)
    def compute_output_shape(self, *args, **kwargs):
        shape = original(self, *args, **kwargs)
        if getattr(self, "activation", None) is not activations.crelu:
            return shape
        channels = shape[-1]
        return (*shape[:-1], None if channels is None else 2 * channels)

    setattr(compute_output_shape, _PATCHED, True)
    cls.compute_output_shape = compute_output_shape


def _register_activation_names(functions_by_name):
    from keras.src import activations as keras_activations

    table = getattr(keras_activations, "ALL_OBJECTS_DICT", None)
    if not isinstance(table, dict):
        _fail("keras.src.activations.ALL_OBJECTS_DICT is gone")
    for name, function in functions_by_name.items():
        if table.setdefault(name, function) is not function:
            continue  # Keras's own name: it keeps meaning Keras's function.
        if keras.activations.get(name) is not function:
            _fail("keras.activations.get no longer reads ALL_OBJECTS_DICT")


def install(functions_by_name):
    """Makes `activation=<name>` work for each name Keras lacks. Idempotent."""
    _register_activation_names(functions_by_name)
    _check_tensorflow_uniform()
    _check_model_introspection()
    for module_name, class_name in _SHAPE_LAYERS + _FIXED_WIDTH_LAYERS:
        cls = _load_class(module_name, class_name)
        if getattr(cls.__init__, _PATCHED, False):
            continue
        fixed_width = (module_name, class_name) in _FIXED_WIDTH_LAYERS
        _wrap_init(cls, fixed_width)
        if not fixed_width:
            _wrap_compute_output_shape(cls)
