"""What RReLU's training-mode slopes cost: random-number generators against one memory pass.

    python benchmarks/bench_random.py [--repeats 15]

Times uniform draws for a 64x32x32x64 float32 tensor, with the seed read from a variable as
a `keras.random.SeedGenerator`'s is: TensorFlow's stateless algorithms eagerly and under
XLA, and JAX's threefry and rbg generators under `jax.jit`; next to `x * 2` (one pass) on
each. Round-robin, medians; run it on an otherwise idle machine.
"""

import argparse
import os
import time

import numpy as np

SHAPE = (64, 32, 32, 64)


def _median_ms(fn, block, repeats):
    for _ in range(3):
        block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def tensorflow_cases():
    import tensorflow as tf

    seed = tf.Variable([1, 2], dtype=tf.int32)
    x = tf.ones(SHAPE)

    def draw(alg):
        return lambda: tf.random.stateless_uniform(SHAPE, seed=seed.read_value(), alg=alg)

    xla = {"pass x*2": lambda: x * 2.0}
    xla.update({f"stateless {alg}": draw(alg) for alg in ("auto_select", "philox", "threefry")})
    cases = {f"TF XLA   {name}": tf.function(fn, jit_compile=True) for name, fn in xla.items()}
    # Threefry has no TensorFlow CPU kernel outside XLA.
    cases.update({f"TF eager {name}": xla[name] for name in ("pass x*2", "stateless philox")})
    return cases, lambda y: y.numpy()


def jax_cases():
    import jax
    import jax.numpy as jnp

    x = jnp.ones(SHAPE)
    cases = {"JAX jit  pass x*2": (jax.jit(lambda x: x * 2.0), x)}
    for impl in ("threefry2x32", "rbg"):
        key = jax.random.key(0, impl=impl)
        cases[f"JAX jit  uniform {impl}"] = (jax.jit(lambda k: jax.random.uniform(k, SHAPE)), key)
    return {name: (lambda f=f, a=a: f(a)) for name, (f, a) in cases.items()}, jax.block_until_ready


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for make in (tensorflow_cases, jax_cases):
        cases, block = make()
        for name, fn in cases.items():
            print(f"{name:32s} {_median_ms(fn, block, args.repeats):9.1f} ms")


if __name__ == "__main__":
    main()
