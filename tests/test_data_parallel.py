"""Data-parallel training of PReLU on one machine with two (logical) CPU devices.

Logical devices (TensorFlow) and `XLA_FLAGS` (JAX) must be set before the framework
initialises, so each scenario runs in a child Python with its own KERAS_BACKEND,
whatever backend this session uses. The child trains the same tiny model from the
same weights on the same data twice, once on one device and once data-parallel,
and prints the alphas as JSON. SGD without shuffling on batches divisible by two
makes the global-batch gradient the single-device gradient, so the alphas must
agree up to float32 summation order, and the replicas' copies must be identical.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALPHA_START = 0.25
MARKER = "RESULT "

# Shared by both children, after their device setup.
COMMON = """
import json

import keras
import numpy as np

import keras_relu

SAMPLES, BATCH, EPOCHS, FEATURES, UNITS = 32, 8, 5, 6, 8


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype("float32")
    y = (x @ rng.standard_normal((FEATURES, 1)) - 1.0).astype("float32")
    return x, y


def build():
    init = keras.initializers.GlorotUniform
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(UNITS, kernel_initializer=init(seed=1))(inputs)
    hidden = keras_relu.PReLU(name="prelu")(hidden)
    outputs = keras.layers.Dense(1, kernel_initializer=init(seed=2))(hidden)
    return keras.Model(inputs, outputs)


def train(model, weights):
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = data()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    return model


def weights_of(model):
    return [np.asarray(w).tolist() for w in model.get_weights()]


first = build()
initial = first.get_weights()
single = train(build(), initial)
result = {
    "initial_alpha": keras.ops.convert_to_numpy(first.get_layer("prelu").alpha).tolist(),
    "single_alpha": keras.ops.convert_to_numpy(single.get_layer("prelu").alpha).tolist(),
    "single_weights": weights_of(single),
}
"""

MIRRORED_CHILD = (
    """
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
"""
    + COMMON
    + """
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = train(build(), initial)
copies = strategy.experimental_local_results(model.get_layer("prelu").alpha.value)
result.update(
    replicas=strategy.num_replicas_in_sync,
    devices=[copy.device for copy in copies],
    replica_alphas=[copy.numpy().tolist() for copy in copies],
    distributed_weights=weights_of(model),
)
print("RESULT " + json.dumps(result))
"""
)

DATA_PARALLEL_CHILD = (
    """
import jax
"""
    + COMMON
    + """
distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu"))
with distribution.scope():
    model = train(build(), initial)
alpha = model.get_layer("prelu").alpha.value
shards = alpha.addressable_shards
result.update(
    replicas=jax.device_count(),
    devices=[str(shard.device) for shard in shards],
    replicated=alpha.sharding.is_fully_replicated,
    sharding_devices=len(alpha.sharding.device_set),
    replica_alphas=[np.asarray(shard.data).tolist() for shard in shards],
    distributed_weights=weights_of(model),
)
print("RESULT " + json.dumps(result))
"""
)


def _require(module):
    # find_spec, not importorskip: importing TensorFlow or JAX here would initialise
    # it in this process for nothing (the child does the work) and, on the torch
    # backend, import it after torch.
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def _run_child(script, backend, **extra_env):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **extra_env)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    assert completed.returncode == 0 and lines, (
        f"child exited with {completed.returncode}\n"
        f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    )
    return json.loads(lines[-1][len(MARKER) :])


def _check_alphas(result):
    """alpha trained, every replica holds the same alpha, and it is single-device's."""
    initial = np.array(result["initial_alpha"])
    single = np.array(result["single_alpha"])
    replicas = [np.array(alpha) for alpha in result["replica_alphas"]]
    np.testing.assert_array_equal(initial, ALPHA_START)
    assert np.abs(single - ALPHA_START).max() > 1e-3, single
    assert len(replicas) == 2
    assert np.abs(replicas[0] - ALPHA_START).max() > 1e-3, replicas[0]
    np.testing.assert_array_equal(replicas[1], replicas[0])
    np.testing.assert_allclose(replicas[0], single, rtol=1e-5, atol=1e-7)
    # The rest of the model followed the same trajectory too.
    pairs = zip(result["distributed_weights"], result["single_weights"], strict=True)
    for distributed, alone in pairs:
        np.testing.assert_allclose(np.array(distributed), np.array(alone), rtol=1e-5, atol=1e-6)


def test_prelu_under_tf_mirrored_strategy_matches_single_device():
    """MirroredStrategy over two logical CPUs: alpha mirrored and equal to one device's."""
    _require("tensorflow")
    result = _run_child(MIRRORED_CHILD, "tensorflow")
    assert result["replicas"] == 2
    assert len(set(result["devices"])) == 2, result["devices"]
    _check_alphas(result)


def test_prelu_under_jax_data_parallel_matches_single_device():
    """keras.distribution.DataParallel on two host devices: alpha replicated, single's value."""
    _require("jax")
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    result = _run_child(DATA_PARALLEL_CHILD, "jax", XLA_FLAGS=flags.strip())
    assert result["replicas"] == 2
    assert result["replicated"] is True
    assert result["sharding_devices"] == 2
    assert len(set(result["devices"])) == 2, result["devices"]
    _check_alphas(result)
