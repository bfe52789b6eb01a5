"""A child process that sees two virtual CPU devices, for the tests of distributed training
(TensorFlow's `MirroredStrategy`, Keras's JAX `DataParallel`): the device count is fixed
when the backend starts, so it cannot change inside the test process."""

import json
import os
import pathlib
import subprocess
import sys

import keras

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The start of a child script, per backend: two replicas over the two CPU devices, as
# `scope` (the distribution's scope) and `replicas` (their count).
TWO_REPLICAS = {
    "tensorflow": """
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
scope, replicas = strategy.scope, strategy.num_replicas_in_sync
""",
    "jax": """
import jax
import keras

assert len(jax.devices("cpu")) == 2, jax.devices()
scope = keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu")).scope
replicas = jax.device_count()
""",
}


def run_with_two_devices(script, timeout=300):
    """Runs `script` on this backend with two CPU devices; returns the JSON it printed
    last on a line that starts with "RESULT ", and fails the test if it printed none."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=keras.config.backend())
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])
