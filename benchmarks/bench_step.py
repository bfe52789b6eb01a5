"""`fit`'s training step and `predict`'s step, per activation, on every backend.

Times the step users pay for: Keras's own train function (the one `fit` runs, called
through `train_on_batch`) and predict function (`predict_on_batch`), for the CIFAR-10
example's CNN (`examples/cifar10/model.py`, SGD with Nesterov momentum) and the
dying-ReLU study's MLP (`examples/dying/trained.py`, Adam), batch 128, with each of our
variants and Keras's own counterpart beside it:

    ours          Keras's counterpart (arm name)
    relu          Activation("relu")                              keras_relu
    leaky_relu    LeakyReLU(negative_slope=0.01)                  keras_leaky_relu
    prelu         PReLU(alpha 0.25; shared_axes=[1, 2] in the CNN) keras_prelu
    elu           ELU()                                           keras_elu
    selu          Activation("selu")                              keras_selu
    relu6         ReLU(max_value=6)                               keras_relu6
    gelu          Activation("gelu") (exact, erf, as ours)        keras_gelu
    swish         Activation("silu")                              keras_silu
    rrelu         none: its ratio is to our leaky_relu, its inference form
    crelu         none (CReLU doubles the next layer's input: about twice the step)
    crelu_half    none; the CNN with half the filters, so that widths after CReLU match
    no_activation Activation("linear"): the step without any activation's cost, so that
                  (relu - no_activation) / relu is the activation's share of the step

The CNN arms of ours are the example's own (`examples/cifar10/model.py`'s `ARMS`).
`--json benchmarks/results_step.json` keeps a run for README's "Which one should I use?"
table (`examples/choose_variant.py`) and the Performance page (`examples/figures.py`).

Modes: TensorFlow's default `tf.function` ("graph": what `fit` runs on a CPU-only
machine) and `jit_compile=True` ("xla"); JAX's jit ("jit"); PyTorch eager ("eager") and
`torch.compile` ("compile"). The backend is fixed when Keras is imported, so each
backend runs in a child process of its own. Arms are timed round-robin (each repeat
times every arm once) and every ratio is the median over repeats of the ratio within a
repeat, with its interquartile range: the machine's drift hits a whole repeat alike and
cancels. On TensorFlow ("graph") it also times the CNN's exported SavedModel and TFLite
forward with PReLU, and counts the TFLite model's PRELU kernels.

    python benchmarks/bench_step.py --backend jax --models mlp --repeats 5
    python benchmarks/bench_step.py --backend all --json benchmarks/results_step.json
    python benchmarks/bench_step.py --compare old.json benchmarks/results_step.json
    python benchmarks/bench_step.py --merge tf.json jax.json torch.json --json all.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]  # This checkout's keras_relu.

MODES = {"tensorflow": ("graph", "xla"), "jax": ("jit",), "torch": ("eager", "compile")}
MODELS = ("cnn", "mlp")
PHASES = ("train", "predict")
# Our variant -> the arm its "x counterpart" ratio is taken against.
COUNTERPARTS = {
    "relu": "keras_relu",
    "leaky_relu": "keras_leaky_relu",
    "prelu": "keras_prelu",
    "rrelu": "leaky_relu",
    "elu": "keras_elu",
    "selu": "keras_selu",
    "relu6": "keras_relu6",
    "gelu": "keras_gelu",
    "swish": "keras_silu",
}
ARMS = (
    *COUNTERPARTS,
    *(arm for arm in COUNTERPARTS.values() if arm.startswith("keras_")),
    "crelu",
    "crelu_half",
    "no_activation",
)
CNN_ONLY = ("crelu_half",)  # The MLP has no width factor.
EXPORT_ARMS = ("relu", "prelu", "keras_prelu")


def make_activation(arm, model, seed):
    """A factory `(name) -> layer` for `arm`'s activation in `model` ("cnn" or "mlp")."""
    import keras

    import keras_relu

    if arm == "no_activation":
        return lambda name=None: keras.layers.Activation("linear", name=name)
    if not arm.startswith("keras_"):
        kwargs = {"negative_slope": 0.01} if arm == "leaky_relu" else {}
        kwargs |= {"seed": seed} if arm == "rrelu" else {}
        return lambda name=None: keras_relu.get(arm, name=name, **kwargs)
    layers = keras.layers
    made = {
        "keras_relu": lambda name: layers.Activation("relu", name=name),
        "keras_leaky_relu": lambda name: layers.LeakyReLU(negative_slope=0.01, name=name),
        "keras_prelu": lambda name: layers.PReLU(
            alpha_initializer=keras.initializers.Constant(0.25),
            shared_axes=[1, 2] if model == "cnn" else None,
            name=name,
        ),
        "keras_elu": lambda name: layers.ELU(name=name),
        "keras_selu": lambda name: layers.Activation("selu", name=name),
        "keras_relu6": lambda name: layers.ReLU(max_value=6.0, name=name),
        "keras_gelu": lambda name: layers.Activation("gelu", name=name),
        "keras_silu": lambda name: layers.Activation("silu", name=name),
    }[arm]
    return lambda name=None: made(name)


def build(arm, model, mode, seed=0):
    """`arm`'s model, compiled for `mode` as `fit` would run it."""
    import keras
    from cifar10 import model as cnn
    from dying import trained

    factory = make_activation(arm, model, seed)
    if model == "cnn" and arm in cnn.ARMS:
        net = cnn.build_model(arm, seed=seed)  # The example's own model.
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    elif model == "cnn":

        class BenchArm(cnn.Arm):
            def activation(self, seed):
                return factory()

        net = cnn.build_model(BenchArm(arm, arm), seed=seed)
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    else:
        net = trained.build_mlp(arm, seed=seed, make_activation=factory)
        optimizer = keras.optimizers.Adam(1e-3)
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=mode in ("xla", "compile"),
    )
    return net


def time_round_robin(steps, repeats, warmup, min_sample_s):
    """Seconds per call of each step, `repeats` samples each, round-robin."""
    calls = {}
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        started = time.perf_counter()
        step()
        calls[name] = max(1, round(min_sample_s / (time.perf_counter() - started)))
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(calls[name]):
                step()
            times[name].append((time.perf_counter() - started) / calls[name])
    return times, calls


def paired(times, arm, reference):
    """Median and interquartile range over repeats of `arm`'s time over `reference`'s."""
    ratios = [a / r for a, r in zip(times[arm], times[reference], strict=True)]
    if len(ratios) == 1:
        return ratios[0], [ratios[0], ratios[0]]
    quartiles = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), [quartiles[0], quartiles[-1]]


def summarize(times, calls):
    summary = {}
    for arm, samples in times.items():
        x_relu, x_relu_iqr = paired(times, arm, "relu")
        figures = {
            "median_ms": statistics.median(samples) * 1e3,
            "calls_per_sample": calls[arm],
            "x_relu": x_relu,
            "x_relu_iqr": x_relu_iqr,
        }
        counterpart = COUNTERPARTS.get(arm)
        if counterpart in times:
            ratio, iqr = paired(times, arm, counterpart)
            figures |= {"counterpart": counterpart, "x_counterpart": ratio}
            figures["x_counterpart_iqr"] = iqr
        summary[arm] = figures
    return summary


def measure(mode, args):
    """{model: {phase: {arm: figures}}} for the backend Keras runs on."""
    import numpy as np

    if mode == "compile":
        import torch

        # Every model's train function is one code object to TorchDynamo, compiled again
        # per model: past its default limit of 8, the rest would silently run eagerly.
        torch._dynamo.config.recompile_limit = 1024
        torch._dynamo.config.accumulated_recompile_limit = 4096

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, args.batch_size)
    results = {}
    for model in args.models:
        arms = [arm for arm in args.arms if model == "cnn" or arm not in CNN_ONLY]
        nets = {arm: build(arm, model, mode) for arm in arms}
        results[model] = {}
        for phase in args.phases:
            if phase == "train":
                steps = {arm: _train_step(net, x, y) for arm, net in nets.items()}
            else:
                steps = {arm: _predict_step(net, x) for arm, net in nets.items()}
            print(f"{mode} {model} {phase}: {len(steps)} arms", file=sys.stderr, flush=True)
            times, calls = time_round_robin(steps, args.repeats, args.warmup, args.min_sample_s)
            results[model][phase] = summarize(times, calls)
    return results


def _train_step(net, x, y):
    return lambda: net.train_on_batch(x, y)


def _predict_step(net, x):
    import keras

    def step():
        out = net.predict_on_batch(x)  # NumPy: the step has finished.
        return keras.ops.convert_to_numpy(out)

    return step


def measure_export(args):
    """PReLU's CNN exported: SavedModel and TFLite forward times, and TFLite's kernels."""
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).integers(0, 256, (args.batch_size, 32, 32, 3)).astype("float32")
    steps, kernels, loaded = {}, {}, []
    with tempfile.TemporaryDirectory() as folder:
        for arm in EXPORT_ARMS:
            net = build(arm, "cnn", "graph")
            path = str(Path(folder) / arm)
            net.export(path, format="tf_saved_model", verbose=False)
            loaded.append(tf.saved_model.load(path))  # Kept: `serve` needs its variables.
            served = loaded[-1].serve
            steps[f"savedmodel_{arm}"] = lambda served=served: served(x).numpy()
            converter = tf.lite.TFLiteConverter.from_saved_model(path)
            interpreter = tf.lite.Interpreter(model_content=converter.convert(), num_threads=2)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, x.shape)
            interpreter.allocate_tensors()

            def invoke(interpreter=interpreter, index=index):
                interpreter.set_tensor(index, x)
                interpreter.invoke()

            steps[f"tflite_{arm}"] = invoke
            ops = [op["op_name"] for op in interpreter._get_ops_details()]
            kernels[arm] = {name: ops.count(name) for name in sorted(set(ops))}
        times, calls = time_round_robin(steps, args.repeats, args.warmup, args.min_sample_s)
    figures = {}
    for name, samples in times.items():
        kind, arm = name.split("_", 1)
        figures[name] = {
            "median_ms": statistics.median(samples) * 1e3,
            "x_relu": paired(times, name, f"{kind}_relu")[0],
        }
        if arm == "prelu":
            figures[name]["x_keras_prelu"] = paired(times, name, f"{kind}_keras_prelu")[0]
    return {"forward": figures, "tflite_kernels": kernels}


def print_tables(runs, out=sys.stdout):
    for run, models in runs.items():
        if "error" in models:
            print(f"\n{run}: {models['error']}", file=out)
            continue
        for model, phases in models.items():
            if model == "export":
                print(f"\n{run} export (the CNN with PReLU, forward)", file=out)
                for name, figures in phases["forward"].items():
                    print(f"  {name}: {json.dumps(figures)}", file=out)
                print(f"  TFLite kernels: {json.dumps(phases['tflite_kernels'])}", file=out)
                continue
            for phase, arms in phases.items():
                print(f"\n{run} {model} {phase}", file=out)
                print("| arm | median ms | x relu (IQR) | x counterpart (IQR) |", file=out)
                print("|---|---:|---:|---:|", file=out)
                for arm, f in arms.items():
                    counterpart = ""
                    if "counterpart" in f:
                        low, high = f["x_counterpart_iqr"]
                        ratio = f["x_counterpart"]
                        counterpart = f"{ratio:.3f} ({low:.2f}-{high:.2f}) {f['counterpart']}"
                    low, high = f["x_relu_iqr"]
                    x_relu = f"{f['x_relu']:.3f} ({low:.2f}-{high:.2f})"
                    print(f"| {arm} | {f['median_ms']:.2f} | {x_relu} | {counterpart} |", file=out)


def merge(results):
    """One result of several runs' files: their runs, and each file's provenance, date and
    load with the runs it measured."""
    runs, parts = {}, []
    for result in results:
        if "parts" in result:
            raise SystemExit("--merge takes the files of single runs, not merged ones")
        overlap = sorted(set(runs) & set(result["runs"]))
        if overlap:
            raise SystemExit(f"--merge: {overlap} measured in two files")
        runs |= result["runs"]
        part = {key: result[key] for key in ("finished", "load", "provenance")}
        parts.append(part | {"measured": sorted(result["runs"])})
    return {"parts": parts, "runs": runs}


def compare(before, after, model="cnn", phase="train", out=sys.stdout):
    """A Markdown table of two runs' ratios: x ReLU and x counterpart, before -> after."""
    runs = [run for run in after["runs"] if run in before["runs"]]
    print(f"| arm | {' | '.join(runs)} |", file=out)
    print("|---|" + "---|" * len(runs), file=out)
    for arm in ARMS:
        cells = []
        for run in runs:
            old = before["runs"][run].get(model, {}).get(phase, {}).get(arm)
            new = after["runs"][run].get(model, {}).get(phase, {}).get(arm)
            cells.append(
                " -> ".join(
                    f"{row['x_relu']:.2f}"
                    + (f" ({row['x_counterpart']:.2f})" if "x_counterpart" in row else "")
                    if row
                    else "-"
                    for row in (old, new)
                )
            )
        if any(cell != "- -> -" for cell in cells):
            print(f"| {arm} | {' | '.join(cells)} |", file=out)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1. Received: {value}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*MODES, "all"], default="tensorflow")
    parser.add_argument("--modes", nargs="+", help="Default: every mode of the backend.")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--repeats", type=_positive, default=15)
    parser.add_argument("--warmup", type=_positive, default=3)
    parser.add_argument("--batch-size", type=_positive, default=128)
    parser.add_argument(
        "--min-sample-s",
        type=float,
        default=0.2,
        help="Each timed sample repeats the step to last about this long. Default: 0.2.",
    )
    parser.add_argument("--no-export", action="store_true", help="Skip PReLU's export.")
    parser.add_argument("--json", type=Path, help="Also write the results here (atomically).")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="RESULT",
        help="Write the runs of these result files (one backend each, say) into --json, "
        "each part with its own provenance, date and load, and exit.",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="Print two result files' ratios side by side (x ReLU, x counterpart) and exit.",
    )
    args = parser.parse_args(argv)
    if "relu" not in args.arms:
        parser.error(f"--arms must include relu, the reference. Received: {args.arms}")
    if args.backend != "all":
        modes = args.modes or list(MODES[args.backend])
        unknown = sorted(set(modes) - set(MODES[args.backend]))
        if unknown:
            parser.error(f"--modes {unknown}: {args.backend}'s are {list(MODES[args.backend])}")
        args.modes = modes
    elif args.modes:
        parser.error("--modes needs one --backend")
    return args


def child_command(args, backend, mode, out):
    command = [sys.executable, __file__, "--backend", backend, "--modes", mode]
    command += ["--models", *args.models, "--arms", *args.arms, "--phases", *args.phases]
    command += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    command += ["--batch-size", str(args.batch_size), "--min-sample-s", str(args.min_sample_s)]
    command += ["--json", str(out)] + (["--no-export"] if args.no_export else [])
    return command


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.merge:
        if not args.json:
            raise SystemExit("--merge needs --json, the file to write")
        from cifar10 import quiet

        quiet.silence_tensorflow_logs()
        from cifar10.train import write_json_atomically

        parts = [json.loads(path.read_text()) for path in args.merge]
        write_json_atomically(args.json, merge(parts))
        return 0
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        for model in args.models:
            for phase in args.phases:
                print(f"\n{model} {phase}: x ReLU (x counterpart), before -> after")
                compare(before, after, model, phase)
        return 0
    load_before = os.getloadavg()
    if args.backend == "all" or os.environ.get("KERAS_BACKEND") != args.backend:
        # Each backend in a process of its own, with KERAS_BACKEND set before Keras loads.
        backends = MODES if args.backend == "all" else {args.backend: args.modes}
        runs = {}
        for backend, modes in backends.items():
            for mode in modes:
                with tempfile.TemporaryDirectory() as folder:
                    out = Path(folder) / "run.json"
                    env = {**os.environ, "KERAS_BACKEND": backend}
                    done = subprocess.run(child_command(args, backend, mode, out), env=env)
                    if done.returncode != 0:
                        runs[f"{backend}/{mode}"] = {"error": f"exit status {done.returncode}"}
                    else:
                        runs |= json.loads(out.read_text())["runs"]
    else:
        from cifar10 import quiet

        quiet.silence_tensorflow_logs()
        runs = {}
        for mode in args.modes:
            runs[f"{args.backend}/{mode}"] = measure(mode, args)
            if args.backend == "tensorflow" and mode == "graph" and not args.no_export:
                runs[f"{args.backend}/{mode}"]["export"] = measure_export(args)
        print_tables(runs)  # Each child process prints its own.
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(load)
    if args.json:
        from cifar10.train import provenance
        from cifar10.train import write_json_atomically

        config = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        }
        info = provenance(config)
        info["command"] = ["python", "benchmarks/bench_step.py", *argv]
        payload = {
            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "load": load,
            "provenance": info,
            "runs": runs,
        }
        write_json_atomically(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
