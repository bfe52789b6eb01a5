"""keras_relu.onnx.fuse_prelu on hand-built ONNX graphs (any backend; export is in test_export)."""

import os

import numpy as np
import pytest

import keras_relu

onnx = pytest.importorskip("onnx", reason="pip install onnx")
ort = pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

SHAPE = [2, 3, 4]
SLOPE = np.array([0.25, -0.5, 0.0, 1.5], dtype=np.float32)  # Per channel (the last axis).


def _model(nodes, initializers=(), inputs=("x",), outputs=("y",)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, SHAPE) for name in inputs],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, SHAPE) for name in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _prelu_graph(c=-SLOPE, c_as="initializer", swap_add=False, swap_mul=False, neg_of="x"):
    """relu(x) + c * relu(-x), as tf2onnx writes Keras's PReLU."""
    nodes = [
        helper.make_node("Relu", ["x"], ["pos"]),
        helper.make_node("Neg", [neg_of], ["neg"]),
        helper.make_node("Relu", ["neg"], ["neg_relu"]),
        helper.make_node("Mul", ["c", "neg_relu"][:: -1 if swap_mul else 1], ["scaled"]),
        helper.make_node("Add", ["pos", "scaled"][:: -1 if swap_add else 1], ["y"]),
    ]
    initializers = []
    if c_as == "initializer":
        initializers.append(numpy_helper.from_array(c, "c"))
    elif c_as == "constant":
        nodes.insert(0, helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(c)))
    inputs = ("x", "c") if c_as == "input" else ("x",)
    inputs += (neg_of,) if neg_of != "x" else ()
    return _model(nodes, initializers, inputs=inputs)


def _inputs():
    x = np.random.default_rng(0).normal(scale=3.0, size=SHAPE).astype(np.float32)
    x.flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, -1e-30]
    return x


def _run(model, **feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": _inputs(), **feeds})[0]


@pytest.mark.parametrize("c_as", ["initializer", "constant"])
@pytest.mark.parametrize("swap_add", [False, True])
@pytest.mark.parametrize("swap_mul", [False, True])
def test_fuse_prelu_makes_one_prelu_with_the_same_outputs(c_as, swap_add, swap_mul):
    model = _prelu_graph(c_as=c_as, swap_add=swap_add, swap_mul=swap_mul)
    expected = _run(model)
    assert keras_relu.onnx.fuse_prelu(model) == 1
    onnx.checker.check_model(model)
    assert [node.op_type for node in model.graph.node] == ["PRelu"]
    (slope,) = model.graph.initializer  # c is gone, the slope is -c.
    np.testing.assert_array_equal(numpy_helper.to_array(slope), SLOPE)
    np.testing.assert_array_equal(_run(model), expected)  # inf, NaN and -0.0 included


def test_fuse_prelu_rewrites_every_match_in_a_chain():
    first = _prelu_graph()
    nodes = list(first.graph.node)
    for node in _prelu_graph().graph.node:  # A second PReLU reading the first's output.
        renamed = helper.make_node(
            node.op_type,
            [{"x": "y", "c": "c"}.get(name, name + "2") for name in node.input],
            [name + "2" for name in node.output],
        )
        nodes.append(renamed)
    model = _model(nodes, first.graph.initializer, outputs=("y2",))
    expected = _run(model)
    assert keras_relu.onnx.fuse_prelu(model) == 2
    assert [node.op_type for node in model.graph.node] == ["PRelu", "PRelu"]
    np.testing.assert_array_equal(_run(model), expected)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(_prelu_graph(neg_of="z"), id="relu(x)+c*relu(-z)"),
        pytest.param(_prelu_graph(c=np.array([0.25, np.inf, 0, 1], np.float32)), id="c=inf"),
        pytest.param(_prelu_graph(c=np.array([0.25, np.nan, 0, 1], np.float32)), id="c=nan"),
        pytest.param(_prelu_graph(c_as="input"), id="c-not-constant"),
    ],
)
def test_fuse_prelu_leaves_other_graphs_alone(model):
    before = model.SerializeToString()
    assert keras_relu.onnx.fuse_prelu(model) == 0
    assert model.SerializeToString() == before


def test_fuse_prelu_leaves_models_below_opset_9_alone():
    model = _prelu_graph()
    model.opset_import[0].version = 8
    before = model.SerializeToString()
    assert keras_relu.onnx.fuse_prelu(model) == 0
    assert model.SerializeToString() == before


def test_fuse_prelu_keeps_intermediates_that_are_read_elsewhere():
    model = _prelu_graph()
    model.graph.output.append(helper.make_tensor_value_info("pos", onnx.TensorProto.FLOAT, SHAPE))
    before = model.SerializeToString()
    assert keras_relu.onnx.fuse_prelu(model) == 0
    assert model.SerializeToString() == before


def test_fuse_prelu_file_rewrites_in_place_and_keeps_the_mode(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(_prelu_graph(), path)
    os.chmod(path, 0o644)
    assert keras_relu.onnx.fuse_prelu_file(path) == 1
    assert [node.op_type for node in onnx.load(path).graph.node] == ["PRelu"]
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_fuse_prelu_file_leaves_a_broken_file_untouched(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(_prelu_graph(), path)
    truncated = path.read_bytes()[:40]
    path.write_bytes(truncated)
    with pytest.raises(ValueError, match="path=.*model.onnx.* is not an ONNX model"):
        keras_relu.onnx.fuse_prelu_file(path)
    assert path.read_bytes() == truncated
    assert os.listdir(tmp_path) == ["model.onnx"]
