"""ONNX Runtime time of a PReLU model before and after `keras_relu.onnx.fuse_prelu`.

    KERAS_BACKEND=tensorflow python benchmarks/bench_onnx_prelu.py [--repeats 50]

Converts a channel-wise PReLU model with tf2onnx, then times the unfused graph
(Relu, Neg, Relu, Mul, Add) and the fused one (PRelu) on a 64x32x32x64 float32 batch,
alternating the two so that both see the same machine state. Prints medians and the ratio.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

import keras_relu  # noqa: E402

SHAPE = (32, 32, 64)


def _session(proto, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    inputs = keras.Input(SHAPE)
    outputs = keras_relu.PReLU()(inputs)
    model = keras.Model(inputs, outputs)
    signature = (tf.TensorSpec((None, *SHAPE), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    unfused = _session(proto, args.threads)
    keras_relu.onnx.fuse_prelu(proto)
    fused = _session(proto, args.threads)

    x = np.random.default_rng(0).normal(size=(64, *SHAPE)).astype(np.float32)
    np.testing.assert_array_equal(unfused.run(None, {"x": x})[0], fused.run(None, {"x": x})[0])
    times = {"unfused": [], "fused": []}
    for _ in range(5):  # warm-up
        unfused.run(None, {"x": x}), fused.run(None, {"x": x})
    for _ in range(args.repeats):
        for name, session in (("unfused", unfused), ("fused", fused)):
            start = time.perf_counter()
            session.run(None, {"x": x})
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print(f"onnxruntime {ort.__version__}, PReLU on {(64, *SHAPE)} float32")
    for name, median in medians.items():
        print(f"  {name:8s} median {median * 1e3:8.2f} ms")
    print(f"  fused / unfused: {medians['fused'] / medians['unfused']:.2f}")


if __name__ == "__main__":
    main()
