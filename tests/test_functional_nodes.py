"""`keras_relu.activations` functions as nodes of functional models (issue 21, items 5-7):
unique names as `keras.ops` calls get, arguments that save and load back exactly, and
`rrelu(training=True)` with a seed generator the model tracks, on every backend."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import references
from keras import ops

from keras_relu import activations

BACKEND = keras.config.backend()
X = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
X[0, 0] = 0.0
NEGATIVE = -np.linspace(0.5, 3.0, 64, dtype="float32").reshape(2, 32)


def _run(model, x=X):
    return ops.convert_to_numpy(model(x))


def _nodes(model):
    return [op for op in model.operations if isinstance(op, activations.ActivationCall)]


# 5. The same function twice in one model ------------------------------------------------

# name -> (outputs of an input, NumPy reference): each uses one function at least twice, or
# next to the keras.ops function of the same name.
REPEATED = {
    "crelu_twice": (
        lambda t: activations.crelu(activations.crelu(t)),
        lambda x: references.crelu(references.crelu(x)),
    ),
    "relu_twice": (
        lambda t: activations.relu(activations.relu(t, max_value=1.0)),
        lambda x: references.relu(x, max_value=1.0),
    ),
    "relu_and_keras_ops_relu": (
        lambda t: activations.relu(ops.relu(t), max_value=0.5),
        lambda x: references.relu(x, max_value=0.5),
    ),
    "keras_ops_relu_after_relu": (
        lambda t: ops.relu(activations.relu(t, negative_slope=0.1)),
        lambda x: references.relu(x),
    ),
    "gelu_twice": (
        lambda t: activations.gelu(activations.gelu(t), approximate=True),
        lambda x: references.gelu(references.gelu(x), approximate=True),
    ),
    "leaky_relu_and_keras_ops_leaky_relu": (
        lambda t: ops.leaky_relu(activations.leaky_relu(t, 0.1), 0.5),
        lambda x: references.leaky_relu(references.leaky_relu(x, 0.1), 0.5),
    ),
    "elu_selu_relu6_twice": (
        lambda t: activations.relu6(activations.selu(activations.selu(activations.elu(t)))),
        lambda x: references.relu6(references.selu(references.selu(references.elu(x)))),
    ),
}


def test_nodes_get_the_names_keras_ops_calls_get():
    keras.backend.clear_session()  # name counters start again, as in a fresh process
    inputs = keras.Input((4,))
    x = activations.relu(ops.relu(activations.relu(inputs)), max_value=2.0)
    x = ops.leaky_relu(activations.leaky_relu(x))
    x = activations.crelu(activations.crelu(x))
    model = keras.Model(inputs, x)
    assert [op.name for op in model.operations[1:]] == [
        "relu",
        "relu_1",
        "relu_2",
        "leaky_relu",
        "leaky_relu_1",
        "crelu",
        "crelu_1",
    ]


@pytest.mark.parametrize("case", sorted(REPEATED))
def test_a_function_twice_in_one_model_builds_and_runs(case):
    function, reference = REPEATED[case]
    inputs = keras.Input((4,))
    model = keras.Model(inputs, function(inputs))
    names = [op.name for op in model.operations]
    assert len(set(names)) == len(names)
    np.testing.assert_allclose(_run(model), reference(X.astype("float64")), rtol=1e-5, atol=1e-6)


# 6. Arguments that are not plain JSON ---------------------------------------------------

# (argument name, value as given, the value the node keeps and loads back)
ARGUMENTS = {
    "float64_array": (np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.1, 0.2, 0.3, 0.4])),
    "float32_array": (
        np.array([[0.1, 0.2, 0.3, 0.4]], "float32"),
        np.array([[0.1, 0.2, 0.3, 0.4]], "float32"),
    ),
    "int_array": (np.array([0, 1, 0, 1], "int32"), np.array([0, 1, 0, 1], "int32")),
    # NumPy scalars are saved as the Python number of the same value.
    "float32_scalar": (np.float32(0.3), float(np.float32(0.3))),
    "tuple": ((0.1, 0.2, 0.3, 0.4), [0.1, 0.2, 0.3, 0.4]),
}


def _assert_same_argument(actual, expected):
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray) and actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    else:
        assert type(actual) is type(expected) and actual == expected


def _prelu_model(alpha, by_keyword):
    inputs = keras.Input((4,))
    if by_keyword:
        return keras.Model(inputs, activations.prelu(inputs, alpha=alpha))
    return keras.Model(inputs, activations.prelu(inputs, alpha))


@pytest.mark.parametrize("by_keyword", [True, False], ids=["keyword", "positional"])
@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_prelu_argument_round_trips_through_a_json_config(case, by_keyword):
    given, expected = ARGUMENTS[case]
    model = _prelu_model(given, by_keyword)
    (node,) = _nodes(model)
    _assert_same_argument(node.arguments["alpha"], expected)  # what it computes with
    config = json.loads(json.dumps(node.get_config()))
    restored = activations.ActivationCall.from_config(config)
    _assert_same_argument(restored.arguments["alpha"], expected)
    reference = references.relu(X) + np.minimum(X, 0) * np.asarray(expected, "float32")
    np.testing.assert_allclose(_run(model), reference, rtol=1e-6)


def test_numpy_scalar_and_tuple_arguments_of_other_functions():
    inputs = keras.Input((4,))
    x = activations.leaky_relu(inputs, negative_slope=np.float64(0.25))
    x = activations.crelu(x, axis=np.int64(1))
    x = activations.relu(x, max_value=np.float32(2.0), threshold=np.float32(-0.5))
    model = keras.Model(inputs, x)
    for node in _nodes(model):  # Python numbers (np.float64 is a float), in JSON and back
        assert all(isinstance(v, (int, float)) for v in node.arguments.values()), node
        restored = type(node).from_config(json.loads(json.dumps(node.get_config())))
        assert restored.arguments == node.arguments
    expected = references.crelu(references.leaky_relu(X, 0.25), axis=1)
    expected = references.relu(expected, max_value=2.0, threshold=-0.5)
    np.testing.assert_allclose(_run(model), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "call, argument, message",
    [
        (lambda t: activations.prelu(t, alpha=keras.Variable(np.ones(4))), "alpha", "Variable"),
        (lambda t: activations.prelu(t, alpha=np.array(["a"] * 4)), "alpha", "dtype <U1"),
        (lambda t: activations.prelu(t, alpha=[0.1, object()]), "alpha", "type object"),
        (lambda t: activations.elu(t, alpha={"value": 1.0}), "alpha", "type dict"),
        (lambda t: activations.swish(t, beta="1.0"), "beta", "type str"),
        (
            lambda t: activations.rrelu(t, training=True, seed=keras.random.SeedGenerator(1)),
            "seed",
            "an int or None",
        ),
    ],
    ids=["variable", "string_array", "object_in_list", "dict", "string", "seed_generator"],
)
def test_unsupported_arguments_are_refused_when_the_node_is_made(call, argument, message):
    with pytest.raises(TypeError, match=rf"activations\.\w+\({argument}=\.\.\.\).*{message}"):
        call(keras.Input((4,)))


def test_a_config_naming_another_object_is_refused():
    config = {
        "name": "prelu",
        "function": "prelu",
        "arguments": {"alpha": {"class_name": "Dense", "config": {"units": 4}, "module": None}},
    }
    with pytest.raises(ValueError, match="only arrays and tensors"):
        activations.ActivationCall.from_config(config)


# 7. rrelu(training=True) on a KerasTensor ----------------------------------------------


def _rrelu_model(seed=None, **kwargs):
    inputs = keras.Input(NEGATIVE.shape[1:])
    return keras.Model(inputs, activations.rrelu(inputs, training=True, seed=seed, **kwargs))


def _check_slopes(y, lower=activations.RRELU_LOWER, upper=activations.RRELU_UPPER):
    slopes = y / NEGATIVE
    assert slopes.min() >= lower - 1e-6 and slopes.max() <= upper + 1e-6
    assert len(np.unique(slopes.round(6))) > NEGATIVE.size // 2  # drawn per element
    return slopes


@pytest.mark.parametrize("seed", [None, 5])
def test_rrelu_training_node_owns_a_seed_generator_the_model_tracks(seed):
    model = _rrelu_model(seed)
    (node,) = _nodes(model)
    assert isinstance(node, activations.RandomActivationCall)
    assert isinstance(node.seed_generator, keras.random.SeedGenerator)
    assert any(v is node.seed_generator.state for v in model.non_trainable_variables)
    first, second = _run(model, NEGATIVE), _run(model, NEGATIVE)
    assert not np.allclose(_check_slopes(first), _check_slopes(second))  # a new draw per call


def test_rrelu_training_node_by_position_and_its_seed_repeats_its_draws():
    inputs = keras.Input(NEGATIVE.shape[1:])
    positional = keras.Model(inputs, activations.rrelu(inputs, 0.2, 0.3, True, 7))
    (node,) = _nodes(positional)
    assert isinstance(node, activations.RandomActivationCall)
    assert node.arguments == {"lower": 0.2, "upper": 0.3, "training": True, "seed": 7}
    keyword = _rrelu_model(7, lower=0.2, upper=0.3)
    for _ in range(2):  # the same seed, the same sequence of draws
        np.testing.assert_array_equal(_run(positional, NEGATIVE), _run(keyword, NEGATIVE))
    _check_slopes(_run(keyword, NEGATIVE), 0.2, 0.3)


def test_rrelu_inference_node_stays_a_stateless_operation():
    inputs = keras.Input(NEGATIVE.shape[1:])
    model = keras.Model(inputs, activations.rrelu(inputs, training=False, seed=3))
    (node,) = _nodes(model)
    assert not isinstance(node, keras.layers.Layer) and not model.non_trainable_variables
    mean = (activations.RRELU_LOWER + activations.RRELU_UPPER) / 2
    np.testing.assert_allclose(_run(model, NEGATIVE), mean * NEGATIVE, rtol=1e-6)


def test_an_older_config_of_a_training_rrelu_loads_as_a_random_node():
    config = {"name": "rrelu", "function": "rrelu", "arguments": {"training": True}}
    assert isinstance(
        activations.ActivationCall.from_config(config), activations.RandomActivationCall
    )
    with pytest.raises(ValueError, match="RandomActivationCall"):
        activations.ActivationCall("rrelu", {"training": True})


# On torch, jit_compile=True is torch.compile, whose tracing of any Keras model (a Dropout
# in place of the node too) reads `.grad` of a non-leaf tensor: a warning, not an error.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager_steps", "jit_compile"])
def test_rrelu_training_node_draws_anew_at_every_step_of_fit(jit_compile):
    """With a learning rate of 0 the weights stay put: the loss changes only if the draws do.

    jit_compile=True is XLA on TensorFlow and JAX, torch.compile on torch.
    """
    inputs = keras.Input(NEGATIVE.shape[1:])
    hidden = activations.rrelu(inputs, training=True, seed=11)
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones")(hidden))
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=jit_compile)
    (node,) = _nodes(model)
    epochs = 4  # one step each: an epoch's loss is its step's
    history = model.fit(NEGATIVE, np.zeros((2, 1)), batch_size=2, epochs=epochs, verbose=0)
    losses = history.history["loss"]
    assert len(set(losses)) == epochs, losses
    seed, draws = ops.convert_to_numpy(node.seed_generator.state)
    assert (seed, draws) == (11, epochs)  # the state advanced once a step, and was kept
    predicted = [model.predict(NEGATIVE, verbose=0) for _ in range(2)]
    assert not np.allclose(*predicted)  # training=True is the node's: predict draws too


# Fresh-process loading: every node kind of this file in one model ----------------------

_RELOAD_NODES = textwrap.dedent(
    """
    import os, sys
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch  # before TensorFlow, as tests/conftest.py does
    import keras
    import numpy as np
    from keras_relu import activations

    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    nodes = [op for op in model.operations if isinstance(op, activations.ActivationCall)]
    arguments = {
        f"{op.name}.{name}": np.asarray(value)
        for op in nodes for name, value in op.arguments.items()
    }
    outputs = [keras.ops.convert_to_numpy(y) for y in model(np.load(sys.argv[2]))]
    names, kinds = [op.name for op in nodes], [type(op).__name__ for op in nodes]
    np.savez(
        sys.argv[3], __names__=names, __kinds__=kinds, __outputs__=outputs[0],
        __random__=outputs[1], **arguments
    )
    """
)


def test_nodes_save_and_load_in_a_fresh_process(tmp_path):
    inputs = keras.Input((4,))
    branches = [function(inputs) for function, _ in REPEATED.values()]
    branches.append(activations.prelu(inputs, alpha=np.array([0.1, 0.2, 0.3, 0.4])))
    branches.append(activations.prelu(inputs, np.array([[0.5, 0.6, 0.7, 0.8]], "float32")))
    branches.append(activations.leaky_relu(inputs, negative_slope=np.float32(0.3)))
    branches.append(activations.prelu(inputs, alpha=(0.1, 0.2, 0.3, 0.4)))
    deterministic = ops.concatenate(branches, axis=-1)
    random = activations.rrelu(activations.rrelu(inputs, training=True, seed=3), training=True)
    model = keras.Model(inputs, [deterministic, random])
    path, data, out = tmp_path / "nodes.keras", tmp_path / "x.npy", tmp_path / "out.npz"
    model.save(path)
    x = np.concatenate([X, -np.abs(X)])
    np.save(data, x)
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_NODES, str(path), str(data), str(out)],
        env={**os.environ, "KERAS_BACKEND": BACKEND},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = np.load(out)
    nodes = _nodes(model)
    assert list(loaded["__names__"]) == [op.name for op in nodes]
    assert list(loaded["__kinds__"]) == [type(op).__name__ for op in nodes]
    for op in nodes:
        for name, value in op.arguments.items():
            expected = np.asarray(value)
            actual = loaded[f"{op.name}.{name}"]
            assert actual.dtype == expected.dtype, (op.name, name)
            np.testing.assert_array_equal(actual, expected, err_msg=f"{op.name}.{name}")
    expected, drawn = (ops.convert_to_numpy(y) for y in model(x))  # first call of each
    np.testing.assert_allclose(loaded["__outputs__"], expected, rtol=1e-6, atol=1e-7)
    # The seeded node's draws start again from its seed; the unseeded one draws anew.
    assert loaded["__random__"].shape == drawn.shape
    negative = x < 0
    slopes = loaded["__random__"][negative] / x[negative]
    lower, upper = activations.RRELU_LOWER, activations.RRELU_UPPER
    assert slopes.min() >= lower**2 - 1e-6 and slopes.max() <= upper**2 + 1e-6
