"""ONNX post-processing: give PReLU its native `PRelu` op.

On TensorFlow, PReLU keeps Keras's graph form relu(x) + (-alpha) * relu(-x), because that is
the form TFLite's converter maps to its `PRELU` kernel. tf2onnx (and so
`model.export(..., format="onnx")`) maps only tfjs's and TFLite's PReLU ops to ONNX `PRelu`,
and turns this form into five elementwise ops. `fuse_prelu` rewrites them into one `PRelu`
node, with the same outputs:

>>> model.export("model.onnx", format="onnx")
>>> keras_relu.onnx.fuse_prelu_file("model.onnx")   # rewrites the file in place, atomically

Needs the `onnx` package (not a dependency of keras_relu itself).
"""

import os
import shutil
import tempfile

import numpy as np


def fuse_prelu(model):
    """Rewrite relu(x) + c * relu(-x), with c a constant, into `PRelu(x, -c)`.

    The two are equal for every input (for x >= 0 both give x, for x < 0 both give -c * x,
    NaN stays NaN) when every element of c is finite, so only such constants are rewritten;
    any other graph is left as it is, as are models below opset 9 (whose `PRelu` broadcasts
    differently) and the subgraphs of control-flow nodes (only the main graph is read).

    Args:
        model: an `onnx.ModelProto`; it is modified in place.

    Returns:
        The number of `PRelu` nodes made.

    Example:
    >>> proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature)
    >>> keras_relu.onnx.fuse_prelu(proto)  # 1 per PReLU layer
    >>> onnx.save(proto, "model.onnx")
    """
    import onnx
    from onnx import numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 9:
        return 0
    graph = model.graph
    # One list of the node objects, held to the end: ids below name these objects.
    nodes_in_order = list(graph.node)
    producer = {out: node for node in nodes_in_order for out in node.output}
    consumers = {}
    for node in nodes_in_order:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}
    initializers = {init.name: init for init in graph.initializer}

    def single_use(name):
        return len(consumers.get(name, [])) == 1 and name not in graph_outputs

    def node_of(name, op_type):
        node = producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def constant(name):
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = node_of(name, "Constant")
        if node is not None and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def match(add):
        """The (x, slope, nodes to remove) of one relu(x) + c * relu(-x), or None."""
        for relu_name, mul_name in (add.input, reversed(add.input)):
            relu, mul = node_of(relu_name, "Relu"), node_of(mul_name, "Mul")
            if relu is None or mul is None or not (single_use(relu_name) and single_use(mul_name)):
                continue
            for neg_relu_name, c_name in (mul.input, reversed(mul.input)):
                neg_relu, c = node_of(neg_relu_name, "Relu"), constant(c_name)
                if neg_relu is None or c is None or not single_use(neg_relu_name):
                    continue
                neg = node_of(neg_relu.input[0], "Neg")
                x = relu.input[0]
                if neg is None or neg.input[0] != x or not single_use(neg.output[0]):
                    continue
                if not np.issubdtype(c.dtype, np.floating) or not np.all(np.isfinite(c)):
                    continue
                return x, -c, c_name, [relu, mul, neg_relu, neg, add]
        return None

    replaced, removed, constants = {}, set(), set()  # By id(): protobufs compare deeply.
    for add in [node for node in nodes_in_order if node.op_type == "Add"]:
        found = match(add)
        if found is None:
            continue
        x, slope, c_name, nodes = found
        slope_name = f"{add.output[0]}/prelu_slope"
        graph.initializer.append(numpy_helper.from_array(slope, slope_name))
        replaced[id(add)] = onnx.helper.make_node(
            "PRelu", [x, slope_name], [add.output[0]], name=f"{add.name or add.output[0]}/PRelu"
        )
        removed.update(id(node) for node in nodes)
        constants.add(c_name)
    # Each PRelu takes its Add's place, so the node list stays topologically sorted.
    kept = [replaced.get(id(node), node) for node in nodes_in_order]
    kept = [node for node in kept if id(node) not in removed]
    # Drop the constants c that nothing reads any more (only those: leave the rest alone).
    used = {name for node in kept for name in node.input} | graph_outputs
    unused = constants - used
    kept = [n for n in kept if not (n.op_type == "Constant" and n.output[0] in unused)]
    del graph.node[:]
    graph.node.extend(kept)
    for name in unused & initializers.keys():
        graph.initializer.remove(initializers[name])
    return len(replaced)


def fuse_prelu_file(path):
    """`fuse_prelu` on an `.onnx` file, replaced atomically (a failure leaves it untouched).

    Returns:
        The number of `PRelu` nodes made.

    Raises:
        ValueError: if the file is not an ONNX model.

    Example:
    >>> model.export("model.onnx", format="onnx")
    >>> keras_relu.onnx.fuse_prelu_file("model.onnx")
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(path)
    except DecodeError as error:
        raise ValueError(f"path={str(path)!r} is not an ONNX model: {error}") from error
    fused = fuse_prelu(model)
    onnx.checker.check_model(model)
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".onnx.tmp", delete=False) as tmp:
        try:
            tmp.write(model.SerializeToString())
            tmp.flush()
            os.fsync(tmp.fileno())
            shutil.copymode(path, tmp.name)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)
    return fused
