"""The comparison's dead-unit figures again, on a stratified probe, from the saved weights.

The comparison's runs (`examples/results/full`) measured the dead fraction and sparsity
on their first 512 training images, which are all airplanes: the data set is stored
class by class. Their accuracies do not depend on the probe, and a rerun takes 10-65
minutes per run here, so they are kept. Where a run's final weights were saved
(`saved_models/cifar10_<arm>_full_seed<seed>.keras`), this measures them again on
`train.train_probe` (512 training images, stratified by class, seed 0), and on the
airplanes the run used, which must give the run's own figures (the weights are the
run's), and writes `examples/results/full/stratified_probe.json` for the report.

    python examples/cifar10/remeasure.py --data-dir ../shared/datasets/cifar10-jpeg.tar.gz
"""

import argparse
import json
import re
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES))

import keras  # noqa: E402

import keras_relu  # noqa: E402, F401  (registers the layers the saved models use)
from cifar10 import data as data_lib  # noqa: E402
from cifar10 import train  # noqa: E402
from keras_relu import diagnostics  # noqa: E402

SAVED = EXAMPLES.parent / "saved_models"
RESULTS = EXAMPLES / "results" / "full"
NAME = re.compile(r"cifar10_(?P<arm>.+)_full_seed(?P<seed>\d+)\.keras")


def measure(model, probe):
    """Overall and per-layer dead fraction and sparsity of `model` on `probe`."""
    stats = diagnostics.activation_stats(model, probe)
    return {**diagnostics.summarize(stats), "layers": stats}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="Local CIFAR-10. Default: keras.datasets.")
    parser.add_argument("--cache-dir", default=str(data_lib.DEFAULT_CACHE_DIR))
    parser.add_argument("--out", default=str(RESULTS), help="Default: %(default)s")
    args = parser.parse_args(argv)
    (x_train, y_train), _ = data_lib.load(args.data_dir, args.cache_dir)
    stratified = train.train_probe(x_train, y_train)
    airplanes = x_train[: train.PROBE_SIZE].astype("float32")  # What the runs measured on.
    models = {}
    for path in sorted(SAVED.glob("cifar10_*_full_seed*.keras")):
        arm, seed = NAME.fullmatch(path.name).group("arm", "seed")
        run = json.loads((Path(args.out) / "runs" / f"{arm}_seed{seed}.json").read_text())
        model = keras.saving.load_model(path, safe_mode=True)
        on_airplanes = measure(model, airplanes)
        recorded = {k: run["history"][k][-1] for k in ("dead_fraction", "sparsity")}
        # The saved weights are the run's only if they give its figures on its probe.
        same = all(abs(on_airplanes[k] - v) < 1e-4 for k, v in recorded.items())
        models[f"{arm}_seed{seed}"] = {
            "arm": arm,
            "seed": int(seed),
            "file": f"saved_models/{path.name}",
            "stratified": measure(model, stratified),
            "airplanes": on_airplanes,
            "recorded_by_the_run": recorded,
            "weights_match_the_run": same,
        }
        print(
            f"{path.name}: dead {models[f'{arm}_seed{seed}']['stratified']['dead_fraction']:.3f}"
            f", sparsity {models[f'{arm}_seed{seed}']['stratified']['sparsity']:.3f} stratified;"
            f" on airplanes {on_airplanes['dead_fraction']:.3f}, {on_airplanes['sparsity']:.3f}"
            f" (the run recorded {recorded['dead_fraction']:.3f}, {recorded['sparsity']:.3f})",
            flush=True,
        )
    result = {
        "probe": train.describe_probe(len(stratified)),
        "runs_probe": f"the first {len(airplanes)} training images (airplanes)",
        "models": models,
        "config": {"probe_size": train.PROBE_SIZE, "probe_seed": train.PROBE_SEED},
    }
    train.write_result(Path(args.out) / "stratified_probe.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
