"""Keras's layer contract, the registry, argument errors and masking."""

import inspect

import keras
import numpy as np
import pytest
from keras import ops
from keras.src import testing

import keras_relu

INPUT_SHAPE = (2, 3, 4, 5)

# (variant, init kwargs, trainable weights, seed generators, output shape)
CONTRACT_CASES = [
    ("relu", {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.2}, 0, 0, INPUT_SHAPE),
    ("leaky_relu", {"negative_slope": 0.2}, 0, 0, INPUT_SHAPE),
    ("prelu", {}, 1, 0, INPUT_SHAPE),
    ("prelu", {"shared_axes": [1, -2], "alpha_initializer": "zeros"}, 1, 0, INPUT_SHAPE),
    ("rrelu", {"lower": 0.1, "upper": 0.2, "seed": 3}, 0, 1, INPUT_SHAPE),
    ("elu", {"alpha": 0.7}, 0, 0, INPUT_SHAPE),
    ("selu", {}, 0, 0, INPUT_SHAPE),
    ("relu6", {}, 0, 0, INPUT_SHAPE),
    ("crelu", {}, 0, 0, (2, 3, 4, 10)),
    ("crelu", {"axis": 1}, 0, 0, (2, 6, 4, 5)),
    ("gelu", {"approximate": True}, 0, 0, INPUT_SHAPE),
    ("swish", {"beta": 1.5}, 0, 0, INPUT_SHAPE),
    ("swish", {"learn_beta": True}, 1, 0, INPUT_SHAPE),
]


# The contract's training check fits stateless layers too; Keras warns about that.
@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
@pytest.mark.parametrize(
    "name, init_kwargs, trainable, seed_generators, output_shape",
    CONTRACT_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CONTRACT_CASES)],
)
def test_keras_layer_contract(name, init_kwargs, trainable, seed_generators, output_shape):
    """Serialization, build, symbolic and eager shapes, training, mixed precision."""
    case = testing.TestCase()
    case.run_layer_test(
        keras_relu.variant(name).layer,
        init_kwargs=init_kwargs,
        input_shape=INPUT_SHAPE,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=seed_generators,
        expected_num_losses=0,
        supports_masking=True,
        # PReLU needs the input shape for alpha; every other layer is complete at init.
        assert_built_after_instantiation=name != "prelu",
    )


def test_registry_covers_every_layer_and_function_once():
    assert keras_relu.names() == [
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
    ]
    assert {v.layer for v in keras_relu.VARIANTS} == {
        getattr(keras_relu.layers, n) for n in keras_relu.layers.__all__
    }
    assert {v.function for v in keras_relu.VARIANTS} == {
        getattr(keras_relu.activations, n) for n in keras_relu.activations.__all__
    }
    assert keras_relu.SiLU is keras_relu.Swish


def test_layer_and_function_share_defaults(variant):
    function_defaults = {
        p.name: p.default
        for p in inspect.signature(variant.function).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    shared = set(function_defaults) & set(variant.defaults)
    for argument in shared:
        assert function_defaults[argument] == variant.defaults[argument], argument


def test_documented_defaults():
    assert keras_relu.variant("leaky_relu").defaults == {"negative_slope": 0.01}
    assert keras_relu.variant("prelu").defaults["alpha_initializer"] == 0.25
    rrelu = keras_relu.variant("rrelu").defaults
    assert (rrelu["lower"], rrelu["upper"]) == (1 / 8, 1 / 3)
    assert keras_relu.variant("gelu").defaults == {"approximate": False}


def test_get_returns_fresh_configured_layers():
    first, second = keras_relu.get("PReLU", shared_axes=[1, 2]), keras_relu.get("prelu")
    assert isinstance(first, keras_relu.PReLU) and first is not second
    assert first.shared_axes == [1, 2]
    assert isinstance(keras_relu.get("silu"), keras_relu.Swish)
    assert isinstance(keras_relu.get(keras_relu.ELU, alpha=0.5), keras_relu.ELU)
    layer = keras_relu.ReLU6()
    assert keras_relu.get(layer) is layer


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: keras_relu.get("relu7"), r"Unknown activation 'relu7'. Valid names: crelu, "),
        (lambda: keras_relu.get(3), r"name=3"),
        (lambda: keras_relu.get(keras_relu.ReLU(), max_value=2), r"would be ignored"),
    ],
)
def test_get_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


NAN = float("nan")
BAD_ARGUMENTS = [
    (keras_relu.ReLU, {"negative_slope": -0.1}, "negative_slope=-0.1"),
    (keras_relu.ReLU, {"negative_slope": NAN}, "negative_slope=nan"),
    (keras_relu.ReLU, {"max_value": -1.0}, "max_value=-1.0"),
    (keras_relu.ReLU, {"threshold": float("inf")}, "threshold=inf"),
    (keras_relu.LeakyReLU, {"negative_slope": -0.01}, "negative_slope=-0.01"),
    (keras_relu.LeakyReLU, {"negative_slope": NAN}, "negative_slope=nan"),
    (keras_relu.LeakyReLU, {"negative_slope": "0.1"}, "negative_slope='0.1'"),
    (keras_relu.PReLU, {"alpha_initializer": NAN}, "alpha_initializer=nan"),
    (keras_relu.PReLU, {"shared_axes": [0]}, r"shared_axes=\[0\]"),
    (keras_relu.PReLU, {"shared_axes": [1.5]}, "shared_axes=1.5"),
    (keras_relu.RReLU, {"lower": 0.4, "upper": 0.2}, "lower=0.4, upper=0.2"),
    (keras_relu.RReLU, {"lower": -0.1}, "lower=-0.1"),
    (keras_relu.RReLU, {"upper": NAN}, "upper=nan"),
    (keras_relu.RReLU, {"seed": 1.5}, "seed=1.5"),
    (keras_relu.RReLU, {"seed": -1}, r"\[0, 2\*\*31\).*seed=-1"),
    (keras_relu.RReLU, {"seed": 2**31}, "seed=2147483648"),
    (keras_relu.ELU, {"alpha": -1.0}, "alpha=-1.0"),
    (keras_relu.CReLU, {"axis": 1.0}, "axis=1.0"),
    (keras_relu.CReLU, {"axis": True}, "axis=True"),
    (keras_relu.CReLU, {"axis": 0}, "axis=0"),
    (keras_relu.GELU, {"approximate": "tanh"}, "approximate='tanh'"),
    (keras_relu.Swish, {"beta": NAN}, "beta=nan"),
    (keras_relu.Swish, {"learn_beta": 1}, "learn_beta=1"),
]


@pytest.mark.parametrize(
    "layer_class, kwargs, message",
    BAD_ARGUMENTS,
    ids=[f"{c.__name__}-{m}" for c, _, m in BAD_ARGUMENTS],
)
def test_invalid_arguments_raise_naming_argument_and_value(layer_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        layer_class(**kwargs)


@pytest.mark.parametrize(
    "layer, input_shape, message",
    [
        (keras_relu.CReLU(axis=4), (2, 3, 4, 5), r"out of range.*axis=4"),
        (keras_relu.CReLU(axis=-4), (2, 3, 4, 5), r"batch axis.*axis=-4"),
        (keras_relu.PReLU(shared_axes=[5]), (2, 3, 4, 5), r"out of range.*shared_axes=\[5\]"),
        (keras_relu.PReLU(), (2, 3, None), r"known size.*shared_axes=None"),
        (keras_relu.PReLU(), (4,), r"rank >= 2"),
    ],
)
def test_invalid_axes_raise_at_build(layer, input_shape, message):
    with pytest.raises(ValueError, match=message):
        keras.Sequential([keras.Input(input_shape[1:], batch_size=input_shape[0]), layer])


def test_functions_validate_their_arguments():
    x = np.ones((2, 3), "float32")
    with pytest.raises(ValueError, match="negative_slope=-1"):
        keras_relu.activations.leaky_relu(x, negative_slope=-1)
    with pytest.raises(ValueError, match="lower=0.5, upper=0.1"):
        keras_relu.activations.rrelu(x, lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="axis=2"):
        keras_relu.activations.crelu(x, axis=2)


def test_prelu_is_channelwise_with_paper_init_and_any_spatial_size():
    layer = keras_relu.PReLU()
    model = keras.Sequential([keras.Input((None, None, 16)), layer])
    assert tuple(layer.alpha.shape) == (1, 1, 16)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.alpha), np.full((1, 1, 16), 0.25))
    for size in (5, 9):
        x = -np.ones((2, size, size, 16), "float32")
        np.testing.assert_allclose(ops.convert_to_numpy(model(x)), -0.25 * np.ones_like(x))


def test_prelu_shared_axes_keep_the_keras_meaning():
    layer = keras_relu.PReLU(shared_axes=[1, 2])
    reference = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer="ones")
    layer.build((None, 4, 5, 3))
    reference.build((None, 4, 5, 3))
    assert layer.alpha.shape == reference.alpha.shape == (1, 1, 3)
    elementwise = keras_relu.PReLU(shared_axes=[])
    elementwise.build((None, 4, 3))
    assert tuple(elementwise.alpha.shape) == (4, 3)


@pytest.mark.parametrize("name", keras_relu.names())
def test_masks_pass_through(name):
    inputs = keras.Input((4, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    outputs = keras_relu.get(name)(masked)
    x = np.ones((2, 4, 3), "float32")
    x[:, 1] = 0.0
    mask = outputs._keras_mask if hasattr(outputs, "_keras_mask") else None
    assert mask is not None and tuple(mask.shape) == (None, 4)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(outputs))
    assert model(x).shape[0] == 2


def test_relu_matches_keras_relu_layer():
    x = np.linspace(-3, 8, 23, dtype="float32")[None]
    for kwargs in ({}, {"max_value": 6.0}, {"negative_slope": 0.2, "threshold": 1.0}):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(keras_relu.ReLU(**kwargs)(x)),
            ops.convert_to_numpy(keras.layers.ReLU(**kwargs)(x)),
        )


# What a layer's `dtype` can be: a policy object (what swap_activations and mixed-precision
# models pass), a quantized policy by name and as an object.
DTYPE_POLICIES = {
    "DTypePolicy('float32')": lambda: keras.DTypePolicy("float32"),
    "DTypePolicy('mixed_bfloat16')": lambda: keras.DTypePolicy("mixed_bfloat16"),
    "'int8_from_float32'": lambda: "int8_from_float32",
    "QuantizedDTypePolicy('int8')": lambda: keras.dtype_policies.QuantizedDTypePolicy(
        "int8", "float32"
    ),
}


@pytest.mark.parametrize("policy", DTYPE_POLICIES)
def test_config_round_trips_with_every_dtype_policy(variant, policy):
    layer = variant.layer(dtype=DTYPE_POLICIES[policy](), name="place")
    config = layer.get_config()
    restored = variant.layer.from_config(config)
    assert type(restored) is variant.layer
    assert restored.dtype_policy == layer.dtype_policy
    assert restored.get_config() == config
    # And as a `.keras` file stores it: the serialized object, with its registered name.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is variant.layer and revived.get_config() == config
