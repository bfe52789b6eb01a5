"""What `keras_relu.swap_activations` costs against building the model it copies.

    KERAS_BACKEND=tensorflow python benchmarks/bench_swap.py [--repeats 5] [--model DenseNet121]

Times `keras.applications.DenseNet121(weights=None)` (224x224x3, 121 ReLU activation
layers, 8.1M weights) and `swap_activations(model, "relu", new)` for a few `new`,
round-robin in one process, after one untimed round of each (first calls import and
compile). Prints medians and each swap's ratio to construction. A swap rebuilds every
layer from its config (creating and initialising its variables, as construction does)
and then copies every weight.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras_relu  # noqa: E402

SWAPS = {
    "prelu (alpha 0)": ("prelu", {"alpha_initializer": 0.0}),
    "leaky_relu": ("leaky_relu", {}),
    "gelu": ("gelu", {}),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="Default: %(default)s")
    parser.add_argument("--model", default="DenseNet121", help="A keras.applications name.")
    args = parser.parse_args(argv)
    build = getattr(keras.applications, args.model)
    model = build(weights=None)
    cases = {f"build {args.model}(weights=None)": lambda: build(weights=None)}
    for name, (new, kwargs) in SWAPS.items():
        cases[f"swap relu -> {name}"] = lambda new=new, kwargs=kwargs: keras_relu.swap_activations(
            model, "relu", new, **kwargs
        )
    times = {name: [] for name in cases}
    for round_ in range(args.repeats + 1):
        for name, case in cases.items():
            start = time.perf_counter()
            case()
            if round_:  # Round 0 warms up.
                times[name].append(time.perf_counter() - start)
            keras.backend.clear_session()  # Keeps name counters and memory from growing.
    build_median = float(np.median(next(iter(times.values()))))
    print(
        f"keras {keras.__version__}, backend {keras.config.backend()}, {os.cpu_count()} CPUs, "
        f"{args.model}: {len(model.layers)} layers, {len(model.weights)} weights, "
        f"{model.count_params():,} parameters; medians of {args.repeats}"
    )
    print("| case | median s | range s | ratio to build |\n|---|---:|---:|---:|")
    for name, values in times.items():
        median = float(np.median(values))
        print(
            f"| {name} | {median:.2f} | {min(values):.2f}-{max(values):.2f} "
            f"| {median / build_median:.2f} |"
        )


if __name__ == "__main__":
    main()
