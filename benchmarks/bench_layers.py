"""Speed of every keras_relu layer against its Keras (or tf.nn) counterpart.

A plain script, not a test: timings depend on the machine and its load. For each
layer, size and mode it measures keras_relu's layer and its built-in
counterparts interleaved in one round-robin loop (so load changes hit both), and
reports medians, the ratio to the built-in, and the ratio to a memory-bandwidth
floor: the bytes the operation must read and write, divided by the copy rate
measured in the same loop.

Modes: eager and compiled (`tf.function(jit_compile=True)` on TensorFlow,
`jax.jit` on JAX), forward and forward+backward; on TensorFlow also forward+backward
in a `tf.function` without XLA (`graph_fwdbwd`: what `fit` runs on a CPU-only machine,
where Keras turns XLA off). Forward+backward returns the
output as well as the gradients (the output is kept, as when a next layer reads
it) and takes the gradient of every trainable weight (PReLU's alpha).

The backend is fixed when Keras is imported, so the script runs itself once per
backend in a child process.

    python benchmarks/bench_layers.py                 # both backends, full run
    python benchmarks/bench_layers.py --quick         # a short smoke run
    python benchmarks/bench_layers.py --backend jax --layers prelu crelu
    python benchmarks/bench_layers.py --malloc nommap # glibc without mmap (RESULTS.md)
"""

import argparse
import inspect
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax")
SIZES = {"dense": (1024, 1024), "conv": (64, 32, 32, 64)}
# graph_fwdbwd: tf.function without XLA, what Keras's fit uses on a CPU-only TensorFlow
# machine (Trainer._resolve_auto_jit_compile); TensorFlow only.
MODES = ("eager_fwd", "eager_fwdbwd", "jit_fwd", "jit_fwdbwd", "graph_fwdbwd")
# keras_relu.names() plus RReLU's training mode, written out: importing keras_relu here
# would fix the backend before each child process chooses its own.
LAYERS = (
    "relu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "rrelu_train",
    "elu",
    "selu",
    "relu6",
    "crelu",
    "gelu",
    "swish",
)
# glibc serves allocations of 32 MiB and more with a fresh mmap, so each call
# that returns a buffer that large page-faults it in; "nommap" turns that off.
MALLOC = {
    "default": None,
    "nommap": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184",
}


# --------------------------------------------------------------------------------------
# The candidates: (label, kind, factory). kind "ours" is keras_relu; "builtin" is the
# counterpart whose ratio is a target; "ref" is shown for context only.
# --------------------------------------------------------------------------------------


def candidates(layer, rank):
    import keras

    import keras_relu

    backend = keras.config.backend()
    acts = keras.activations
    conv = rank == 4
    slope = 0.01
    rrelu_mid = (keras_relu.activations.RRELU_LOWER + keras_relu.activations.RRELU_UPPER) / 2
    out = []
    if layer == "relu":
        out += [("keras_relu.ReLU", "ours", keras_relu.ReLU)]
        out += [("keras.layers.ReLU", "builtin", keras.layers.ReLU)]
        out += [("keras.activations.relu", "builtin", lambda: acts.relu)]
    elif layer == "leaky_relu":
        out += [("keras_relu.LeakyReLU(0.01)", "ours", lambda: keras_relu.LeakyReLU(slope))]
        out += [("keras.layers.LeakyReLU(0.01)", "builtin", lambda: keras.layers.LeakyReLU(slope))]
        out += [
            (
                "keras.activations.leaky_relu",
                "builtin",
                lambda: lambda x: acts.leaky_relu(x, negative_slope=slope),
            )
        ]
    elif layer == "prelu":
        shared = [1, 2] if conv else None
        out += [("keras_relu.PReLU", "ours", keras_relu.PReLU)]
        out += [
            (
                f"keras.layers.PReLU(shared_axes={shared})",
                "builtin",
                lambda: keras.layers.PReLU(
                    alpha_initializer=keras.initializers.Constant(0.25), shared_axes=shared
                ),
            )
        ]
        out += [("keras_relu.ReLU (reference)", "ref", keras_relu.ReLU)]
    elif layer == "rrelu":
        # Inference: a leaky ReLU with the mean slope.
        out += [("keras_relu.RReLU", "ours", lambda: keras_relu.RReLU(seed=1))]
        out += [
            (
                f"keras.layers.LeakyReLU({rrelu_mid:.4f})",
                "builtin",
                lambda: keras.layers.LeakyReLU(rrelu_mid),
            )
        ]
    elif layer == "rrelu_train":
        # Training: the target is at most one extra pass over LeakyReLU.
        out += [("keras_relu.RReLU(training)", "ours", lambda: keras_relu.RReLU(seed=1))]
        out += [("keras_relu.LeakyReLU (reference)", "ref", lambda: keras_relu.LeakyReLU(0.2))]
    elif layer == "elu":
        out += [("keras_relu.ELU", "ours", keras_relu.ELU)]
        out += [("keras.layers.ELU", "builtin", keras.layers.ELU)]
        out += [("keras.activations.elu", "builtin", lambda: acts.elu)]
    elif layer == "selu":
        out += [("keras_relu.SELU", "ours", keras_relu.SELU)]
        out += [("keras.activations.selu", "builtin", lambda: acts.selu)]
    elif layer == "relu6":
        out += [("keras_relu.ReLU6", "ours", keras_relu.ReLU6)]
        out += [("keras.layers.ReLU(max_value=6)", "builtin", lambda: keras.layers.ReLU(6.0))]
        out += [("keras.activations.relu6", "builtin", lambda: acts.relu6)]
    elif layer == "crelu":
        axis = -1
        out += [("keras_relu.CReLU", "ours", keras_relu.CReLU)]
        if backend == "tensorflow":
            import tensorflow as tf

            out += [("tf.nn.crelu", "builtin", lambda: lambda x: tf.nn.crelu(x, axis=axis))]
        out += [
            (
                "concat(ops.relu(x), ops.relu(-x))",
                "builtin",
                lambda: (
                    lambda x: keras.ops.concatenate(
                        [keras.ops.relu(x), keras.ops.relu(keras.ops.negative(x))], axis
                    )
                ),
            )
        ]
        out += [("keras_relu.ReLU (reference)", "ref", keras_relu.ReLU)]
        out += [("keras_relu.ReLU @2C (reference)", "ref2c", keras_relu.ReLU)]
    elif layer == "gelu":
        out += [("keras_relu.GELU", "ours", keras_relu.GELU)]
        out += [("keras.activations.gelu", "builtin", lambda: acts.gelu)]
    elif layer == "swish":
        out += [("keras_relu.Swish", "ours", keras_relu.Swish)]
        out += [("keras.activations.silu", "builtin", lambda: acts.silu)]
    # Our functional form too: a built-in function (keras.activations.*, tf.nn.*) is
    # compared with it, a built-in layer with our layer (an eager layer call costs
    # Layer.__call__'s bookkeeping, which a bare function does not pay).
    functions = {
        "relu": lambda: keras_relu.activations.relu,
        "leaky_relu": lambda: lambda x: keras_relu.activations.leaky_relu(x, slope),
        "elu": lambda: keras_relu.activations.elu,
        "selu": lambda: keras_relu.activations.selu,
        "relu6": lambda: keras_relu.activations.relu6,
        "crelu": lambda: keras_relu.activations.crelu,
        "gelu": lambda: keras_relu.activations.gelu,
        "swish": lambda: keras_relu.activations.silu,
    }
    if layer in functions:
        out.append((f"keras_relu.activations.{layer}", "ours_fn", functions[layer]))
    return out


def is_function_label(label):
    return not label.startswith(("keras.layers.", "keras_relu.")) or ".activations." in label


def training_flag(layer, mode):
    """Whether `layer` is called with `training=True`: RReLU's training mode, and every
    layer in a forward+backward mode (as `fit`'s train step calls it) except RReLU's
    inference row."""
    return layer == "rrelu_train" or (mode.endswith("fwdbwd") and layer != "rrelu")


def out_factor(layer):
    return 2 if layer == "crelu" else 1


# --------------------------------------------------------------------------------------
# Backend runners: each returns a zero-argument callable that runs one step to completion.
# --------------------------------------------------------------------------------------


class Runner:
    def __init__(self, obj, x, g, training):
        import keras

        self.keras = keras
        self.obj = obj
        self.x = x
        self.g = g
        self.training = training
        self.is_layer = isinstance(obj, keras.layers.Layer)
        if self.is_layer and not obj.built:
            obj.build(tuple(x.shape))

    def call(self, x):
        if self.is_layer:
            return self.obj(x, training=True) if self.training else self.obj(x)
        return self.obj(x)

    def weights(self):
        return list(self.obj.trainable_variables) if self.is_layer else []


class TFRunner(Runner):
    def fwd(self):
        return self.call(self.x)

    def fwdbwd(self):
        import tensorflow as tf

        weights = [v.value for v in self.weights()]
        with tf.GradientTape() as tape:
            tape.watch(self.x)
            y = self.call(self.x)
        grads = tape.gradient(y, [self.x] + weights, output_gradients=self.g)
        return y, grads

    def make(self, mode):
        import tensorflow as tf

        x, g = self.x, self.g
        if mode == "eager_fwd":
            return lambda: self.fwd()
        if mode == "eager_fwdbwd":
            return lambda: self.fwdbwd()
        if mode == "jit_fwd":
            f = tf.function(lambda x: self.call(x), jit_compile=True)
            return lambda: f(x)

        def step(x, g):
            weights = [v.value for v in self.weights()]
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = self.call(x)
            return y, tape.gradient(y, [x] + weights, output_gradients=g)

        f = tf.function(step, jit_compile=mode == "jit_fwdbwd")
        self.compiled_step = lambda: f.experimental_get_compiler_ir(x, g)(stage="optimized_hlo")
        return lambda: f(x, g)

    def peak_bytes(self):
        """Sum of every buffer the optimized XLA step allocates (parameters excluded)."""
        return hlo_buffer_bytes(self.compiled_step())


class JaxRunner(Runner):
    def pure(self, tv, ntv, x):
        if not self.is_layer:
            return self.obj(x)
        # stateless_call passes `training` to `call`, which Keras's ReLU... do not take.
        takes_training = "training" in inspect.signature(self.obj.call).parameters
        kwargs = {"training": True} if self.training and takes_training else {}
        y, _ = self.obj.stateless_call(tv, ntv, x, **kwargs)
        return y

    def make(self, mode):
        import jax

        x, g = self.x, self.g
        tv = [v.value for v in self.weights()]
        ntv = [v.value for v in self.obj.non_trainable_variables] if self.is_layer else []

        def step(tv, ntv, x, g):
            y, vjp = jax.vjp(lambda tv, x: self.pure(tv, ntv, x), tv, x)
            dtv, dx = vjp(g)
            return y, dx, dtv

        if mode == "eager_fwd":
            return lambda: jax.block_until_ready(self.call(x))
        if mode == "eager_fwdbwd":
            return lambda: jax.block_until_ready(step(tv, ntv, x, g))
        if mode == "jit_fwd":
            f = jax.jit(lambda tv, ntv, x: self.pure(tv, ntv, x))
            return lambda: jax.block_until_ready(f(tv, ntv, x))
        f = jax.jit(step)
        self.compiled_step = lambda: f.lower(tv, ntv, x, g).compile()
        return lambda: jax.block_until_ready(f(tv, ntv, x, g))

    def peak_bytes(self):
        """XLA's buffer assignment: temporaries plus outputs of the compiled step."""
        m = self.compiled_step().memory_analysis()
        return m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes


_DTYPE_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "s32": 4, "u32": 4, "s64": 8, "pred": 1}
_SKIP_OPS = ("parameter", "bitcast", "tuple", "get-tuple-element", "constant")


def hlo_buffer_bytes(hlo_text):
    """Bytes of every array produced in the ENTRY computation of an optimized HLO module.

    TensorFlow exposes no CPU memory statistics and no XLA buffer assignment, but the
    optimized HLO of a jit-compiled step names every buffer it materialises (fusion
    outputs, copies, custom calls). Their sum, parameters excluded, is an upper bound
    on the step's peak: exact when no buffer is reused, which holds for these few-op
    graphs whose results are all outputs.
    """
    entry = hlo_text[hlo_text.index("\nENTRY ") :]
    total = 0
    for line in entry.splitlines()[1:]:
        if line.startswith("}"):
            break
        m = re.match(r"\s*(ROOT\s+)?%?[\w.\-]+ = (\S+?)\[([\d,]*)\]\S* ([\w\-]+)\(", line)
        if not m or m.group(4) in _SKIP_OPS:
            continue
        dims = [int(d) for d in m.group(3).split(",") if d]
        n = 1
        for d in dims:
            n *= d
        total += n * _DTYPE_BYTES.get(m.group(2), 4)
    return total


# --------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------


def copy_runner(n_elements):
    """A plain memory copy of `n_elements` float32 values into a preallocated buffer."""
    import numpy as np

    src = np.random.default_rng(0).standard_normal(n_elements, dtype=np.float32)
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def floor_bytes(layer, mode, n):
    """Bytes an ideal fused kernel must move (float32): read x, write y; for the
    backward also read the upstream gradient g and write dx (alpha is negligible)."""
    k = out_factor(layer)
    fwd = n + k * n
    return 4 * (fwd if mode.endswith("_fwd") else fwd + k * n + n)


def run_group(entries, repeats, warmup):
    """Round-robin: every repeat times each entry once, so load drifts hit all alike."""
    for _, fn in entries:
        for _ in range(warmup):
            fn()
    times = {label: [] for label, _ in entries}
    for _ in range(repeats):
        for label, fn in entries:
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(ts) for label, ts in times.items()}


def bench_backend(args):
    os.environ["KERAS_BACKEND"] = args.backend
    if args.backend == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    import keras
    import numpy as np

    import keras_relu

    assert keras.config.backend() == args.backend
    runner_cls = TFRunner if args.backend == "tensorflow" else JaxRunner
    rng = np.random.default_rng(0)
    results = []
    for size_name in args.sizes:
        shape = SIZES[size_name]
        n = int(np.prod(shape))
        x_np = rng.standard_normal(shape, dtype=np.float32)
        x = keras.ops.convert_to_tensor(x_np)
        g1 = keras.ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32))
        shape2 = shape[:-1] + (2 * shape[-1],)
        x2 = keras.ops.convert_to_tensor(rng.standard_normal(shape2, dtype=np.float32))
        g2 = keras.ops.convert_to_tensor(rng.standard_normal(shape2, dtype=np.float32))
        for mode in args.modes:
            if mode == "graph_fwdbwd" and args.backend != "tensorflow":
                continue  # JAX has no graph mode without XLA.
            entries, meta = [("copy", copy_runner(n))], {}
            for layer in args.layers:
                for label, kind, factory in candidates(layer, len(shape)):
                    wide_in = kind == "ref2c"
                    if kind == "ref2c" and layer != "crelu":
                        continue
                    xin = x2 if wide_in else x
                    g = g2 if (out_factor(layer) == 2 or wide_in) else g1
                    if kind in ("ref", "ref2c"):
                        g = g2 if wide_in else g1
                    training = training_flag(layer, mode) and (
                        kind == "ours" or layer != "rrelu_train"
                    )
                    r = runner_cls(factory(), xin, g, training)
                    fn = r.make(mode)
                    key = f"{layer}|{label}"
                    entries.append((key, fn))
                    meta[key] = (layer, label, kind, r)
            t0 = time.perf_counter()
            med = run_group(entries, args.repeats, args.warmup)
            copy_rate = 2 * 4 * n / med["copy"]  # bytes read + written per second
            for key, (layer, label, kind, r) in meta.items():
                scale = 2 if kind == "ref2c" else 1
                fbytes = floor_bytes("relu" if kind in ("ref", "ref2c") else layer, mode, n)
                fbytes *= scale
                ours_kind = "ours_fn" if kind == "builtin" and is_function_label(label) else "ours"
                ours_key = next(
                    (k for k, m in meta.items() if m[0] == layer and m[2] == ours_kind),
                    next(k for k, m in meta.items() if m[0] == layer and m[2] == "ours"),
                )
                row = {
                    "backend": args.backend,
                    "size": size_name,
                    "shape": list(shape),
                    "mode": mode,
                    "layer": layer,
                    "impl": label,
                    "kind": kind,
                    "ms": med[key] * 1e3,
                    "gbps": fbytes / med[key] / 1e9,
                    "x_floor": med[key] / (fbytes / copy_rate),
                    "ours_speedup": med[key] / med[ours_key],
                    "copy_gbps": copy_rate / 1e9,
                }
                if mode == "jit_fwdbwd" and not args.no_memory:
                    row["step_bytes"] = r.peak_bytes()
                results.append(row)
            print(
                f"# {args.backend} {size_name} {mode}: {len(entries)} entries, "
                f"{time.perf_counter() - t0:.1f}s, copy {copy_rate / 1e9:.1f} GB/s",
                file=sys.stderr,
                flush=True,
            )
    del keras_relu
    return results


# --------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------


def print_table(results, out=sys.stdout):
    header = (
        "| backend | size | mode | layer | implementation | ms | GB/s | x floor "
        "| ours faster by | step MiB |"
    )
    print(header, file=out)
    print("|" + "---|" * 10, file=out)
    for r in results:
        speed = "" if r["kind"].startswith("ours") else f"{r['ours_speedup']:.2f}"
        mem = f"{r['step_bytes'] / 2**20:.0f}" if "step_bytes" in r else ""
        print(
            f"| {r['backend']} | {r['size']} | {r['mode']} | {r['layer']} | {r['impl']} "
            f"| {r['ms']:.2f} | {r['gbps']:.1f} | {r['x_floor']:.2f} | {speed} | {mem} |",
            file=out,
        )


def check_targets(results, out=sys.stdout):
    """The issue's targets, from the ratios of one run."""
    print("\nTargets:", file=out)
    groups = {}
    for r in results:
        groups.setdefault((r["backend"], r["size"], r["mode"], r["layer"]), []).append(r)
    worst = []
    for key, rows in groups.items():
        for r in rows:
            if r["kind"] == "builtin":
                worst.append((r["ours_speedup"], key, r["impl"]))
    worst.sort()
    missed = [w for w in worst if w[0] < 0.95]
    print(
        f"- every layer >= 0.95x its built-in: {len(worst) - len(missed)}/{len(worst)} met",
        file=out,
    )
    for s, key, impl in missed:
        print(f"  - MISSED {'/'.join(key)} vs {impl}: {s:.2f}", file=out)

    def t(backend, size, mode, layer, kind, impl_part=""):
        for r in groups.get((backend, size, mode, layer), []):
            if r["kind"] == kind and impl_part in r["impl"]:
                return r
        return None

    for (backend, size, mode, layer), rows in sorted(groups.items()):
        if layer == "prelu" and mode == "eager_fwd":
            b = t(backend, size, mode, layer, "builtin")
            if b:
                ok = "met" if b["ours_speedup"] >= 2 else "MISSED"
                print(
                    f"- PReLU eager fwd >= 2x keras ({backend}/{size}): "
                    f"{b['ours_speedup']:.2f}x {ok}",
                    file=out,
                )
        if layer == "prelu" and mode == "jit_fwdbwd":
            o, ref = t(backend, size, mode, layer, "ours"), t(backend, size, mode, layer, "ref")
            if o and ref:
                ratio = o["ms"] / ref["ms"]
                ok = "met" if ratio <= 1.15 else "MISSED"
                print(
                    f"- PReLU jit fwd+bwd <= 1.15x ReLU ({backend}/{size}): {ratio:.2f}x {ok}",
                    file=out,
                )
        if layer == "crelu" and mode == "jit_fwdbwd":
            o = t(backend, size, mode, layer, "ours")
            ref = t(backend, size, mode, layer, "ref")
            ref2 = t(backend, size, mode, layer, "ref2c")
            if o and ref:
                ratio = o["ms"] / ref["ms"]
                ok = "met" if ratio <= 2.0 else "MISSED"
                line = f"- CReLU jit fwd+bwd <= 2.0x ReLU ({backend}/{size}): {ratio:.2f}x {ok}"
                for b in rows:
                    if b["kind"] == "builtin":
                        line += f"; {b['impl']} {b['ms'] / ref['ms']:.2f}x"
                print(line, file=out)
            if o and ref2 and "step_bytes" in o:
                ok = "met" if o["step_bytes"] <= ref2["step_bytes"] else "MISSED"
                print(
                    f"- CReLU step memory <= ReLU at 2C ({backend}/{size}): "
                    f"{o['step_bytes'] / 2**20:.0f} vs {ref2['step_bytes'] / 2**20:.0f} MiB {ok}",
                    file=out,
                )
        if layer == "rrelu_train":
            o, ref = t(backend, size, mode, layer, "ours"), t(backend, size, mode, layer, "ref")
            if o and ref:
                # One extra pass: reading and writing the tensor once more, at the copy rate.
                n_bytes = 2 * 4 * _numel(o["shape"])
                one_pass_ms = n_bytes / (o["copy_gbps"] * 1e9) * 1e3
                extra = o["ms"] - ref["ms"]
                ok = "met" if extra <= one_pass_ms else "MISSED"
                print(
                    f"- RReLU training extra cost ({backend}/{size}/{mode}): {extra:.2f} ms "
                    f"vs one pass {one_pass_ms:.2f} ms {ok}",
                    file=out,
                )


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def machine():
    import multiprocessing

    lines = [f"python {platform.python_version()}, {platform.platform()}"]
    lines.append(f"{multiprocessing.cpu_count()} CPUs")
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
        lines.append(model)
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/loadavg") as f:
            lines.append("load average " + " ".join(f.read().split()[:3]))
    except OSError:
        pass
    return "; ".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS + ("all",), default="all")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per entry")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per entry")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up")
    parser.add_argument("--malloc", choices=list(MALLOC), default="default")
    parser.add_argument("--no-memory", action="store_true", help="skip step memory")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1

    if args.child:
        json.dump(bench_backend(args), sys.stdout)
        return 0

    backends = BACKENDS if args.backend == "all" else (args.backend,)
    print(f"machine: {machine()}")
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    results = []
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        if MALLOC[args.malloc]:
            env["GLIBC_TUNABLES"] = MALLOC[args.malloc]
        child = [sys.executable, os.path.abspath(__file__), "--child", "--backend", backend]
        child += ["--sizes", *args.sizes, "--modes", *args.modes, "--layers", *args.layers]
        child += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
        child += ["--no-memory"] if args.no_memory else []
        proc = subprocess.run(child, env=env, stdout=subprocess.PIPE, text=True, check=True)
        results += json.loads(proc.stdout)
    print(f"after: {machine()}")
    print()
    print_table(results)
    check_targets(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
