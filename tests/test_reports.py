"""The study's reports draw their conclusions through `examples/paired.py`.

Synthetic result files (5 seeds, small made-up values chosen so that each verdict is
known) go through the dying-ReLU report (`examples/dying/report.py`, `verdicts.py`) and
the CIFAR-10 comparison's verdicts (`examples/cifar10/report.py`): better / worse /
no difference shown, issue 29's targets met / not met / not measured, and a partial run
(arms or seeds missing) reported as such instead of a crash.
"""

import json
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

from cifar10 import report as cifar_report  # noqa: E402
from dying import report  # noqa: E402
from dying import verdicts  # noqa: E402

SEEDS = range(5)
RATES = (1e-3, 3e-3, 1e-2, 3e-2)
CONFIG = {
    "train_images": 100,
    "test_images": 50,
    "epochs": 2,
    "batch_size": 10,
    "optimizer": "adam",
    "probe_images": 20,
}
WOBBLE = (0.004, -0.003, 0.001, -0.002, 0.0)  # Per seed: a small spread, mean 0.


def _run(lr, seed, accuracy, dead, variant="relu", arm=None, seconds=10.0, **extra):
    run = {
        "variant": variant,
        "learning_rate": lr,
        "seed": seed,
        "config": dict(CONFIG),
        "at_start": {"dead_fraction": 0.0, "inactive_fraction": 0.0},
        "history": {
            "dead_fraction": [dead / 2, dead],
            "inactive_fraction": [dead / 2, dead + 0.01],
            "dead_fraction/dense": [dead / 2, dead],
            "inactive_fraction/dense": [dead / 2, dead + 0.01],
        },
        "test_accuracy": accuracy,
        "dead_unit_warnings": [],
        "ever_inactive_units": 3,
        "revived_units": 1,
        "train_seconds": seconds,
        "finished": f"2026-12-06 10:{seed:02d}:00 UTC",
        **extra,
    }
    if arm is not None:
        run["cure"] = {"arm": arm}
    return run


def _relu(lr, seed):
    """Plain ReLU: trains at the low rates, dies at the high ones."""
    dies = lr >= 1e-2
    return _run(lr, seed, (0.15 if dies else 0.40) + WOBBLE[seed], 0.5 if dies else 0.01)


# How each cure differs from plain ReLU at (low, high) rates: accuracy and dead fraction.
GOOD = {
    "revive": ((0.0, 0.0), (0.05, -0.2)),
    "guard": ((0.0, 0.0), (0.20, -0.3)),
    "schedule": ((0.01, 0.0), (0.21, -0.3)),
    "prelu": ((0.0, -0.01), (0.10, -0.5)),
}


def _cures(effects=GOOD, seconds=None, reductions=0, skip=()):
    """`(trained runs, cure runs)`; `skip` holds (arm, lr, seed) left out."""
    seconds = seconds or {}
    trained = [_relu(lr, s) for lr in RATES for s in SEEDS]
    cures = [
        {**_relu(lr, s), "cure": {"arm": "relu"}, "train_seconds": 10.0}
        for lr in RATES
        for s in SEEDS
    ]
    for arm, (low, high) in effects.items():
        for lr in RATES:
            accuracy, dead = high if lr >= 1e-2 else low
            for s in SEEDS:
                if (arm, lr, s) in skip:
                    continue
                base = _relu(lr, s)
                extra = {}
                if arm == "guard":
                    extra["lr_reductions"] = reductions if lr == 1e-3 else 3
                if arm == "revive":
                    extra["held_out_logit_shift"] = {
                        "images": 8,
                        "by_call": [{"max": 0.5, "mean": 0.1}, {"max": 0.25, "mean": 0.3}],
                    }
                cures.append(
                    _run(
                        lr,
                        s,
                        base["test_accuracy"] + accuracy + WOBBLE[(s + 2) % 5] / 4,
                        verdicts.value(base, "dead_fraction") + dead,
                        arm=arm,
                        seconds=seconds.get(arm, 10.2),
                        **extra,
                    )
                )
    return trained, cures


def _targets(trained, cures):
    table, reruns = report.cures_table(cures, trained)
    return {t.name: t for t in verdicts.check_targets(table, reruns)}, table, reruns


def _status(targets, start):
    (target,) = [t for name, t in targets.items() if name.startswith(start)]
    return target.status


def test_compare_says_better_worse_or_no_difference_and_fewer_dead_is_better():
    reference = [_relu(1e-2, s) for s in SEEDS]
    higher = [_run(1e-2, s, r["test_accuracy"] + 0.05, 0.3) for s, r in enumerate(reference)]
    noisy = [
        _run(1e-2, s, r["test_accuracy"] + (0.05 if s % 2 else -0.05), 0.5)
        for s, r in enumerate(reference)
    ]
    assert verdicts.compare(higher, reference, "test_accuracy").verdict == "better"
    assert verdicts.compare(reference, higher, "test_accuracy").verdict == "worse"
    assert verdicts.compare(higher, reference, "dead_fraction").verdict == "better"  # 0.3 < 0.5
    assert verdicts.compare(reference, higher, "dead_fraction").verdict == "worse"
    assert verdicts.compare(noisy, reference, "test_accuracy").verdict == "no difference shown"
    text = verdicts.difference_text(verdicts.compare(higher, reference, "test_accuracy"))
    assert text == "+5.0 (+5.0 to +5.0) better"
    assert verdicts.compare(higher[:1], reference[1:], "test_accuracy").verdict == "no common seed"


def test_every_target_is_met_by_cures_that_meet_them():
    targets, _, _ = _targets(*_cures())
    assert len(targets) == 9
    assert {t.status for t in targets.values()} == {"met"}, [t.line() for t in targets.values()]


REVIVE_HIGH = ("`ReviveDeadUnits` at 0.01", "`ReviveDeadUnits` at 0.03")
REVIVE_LOW = ("`ReviveDeadUnits` at 0.001", "`ReviveDeadUnits` at 0.003")
GUARD_HIGH = ("The guard at 0.01", "The guard at 0.03")


@pytest.mark.parametrize(
    "change, missed",
    [
        ({"effects": {**GOOD, "revive": ((0.0, 0.0), (0.0, -0.2))}}, REVIVE_HIGH),  # Accuracy.
        ({"effects": {**GOOD, "revive": ((0.0, 0.0), (0.05, 0.0))}}, REVIVE_HIGH),  # Dead.
        ({"effects": {**GOOD, "revive": ((-0.05, 0.0), (0.05, -0.2))}}, REVIVE_LOW),
        ({"effects": {**GOOD, "revive": ((0.0, 0.03), (0.05, -0.2))}}, REVIVE_LOW),
        ({"effects": {**GOOD, "guard": ((0.0, 0.0), (0.08, -0.3))}}, GUARD_HIGH),  # < 10 points.
        ({"effects": {**GOOD, "guard": ((0.0, 0.0), (0.18, -0.3))}}, GUARD_HIGH),  # Schedule -3.
        ({"reductions": 1}, ("The guard at 0.001",)),
        ({"seconds": {"revive": 11.0}}, ("`ReviveDeadUnits` costs",)),
        ({"seconds": {"guard": 10.6}}, ("The guard costs",)),
    ],
)
def test_a_target_missed_says_not_met_with_its_figures(change, missed):
    targets, _, _ = _targets(*_cures(**change))
    status = {name: t.status for name, t in targets.items()}
    assert {name for name, s in status.items() if s != "met"} == {
        name for name in status if name.startswith(missed)
    }
    assert {status[name] for name in status if name.startswith(missed)} == {"not met"}


def test_guard_without_a_record_of_its_lowerings_is_not_measured():
    trained, cures = _cures()
    for run in cures:
        run.pop("lr_reductions", None)
    targets, _, _ = _targets(trained, cures)
    assert _status(targets, "The guard at 0.001") == "not measured"
    history = [{"lowered": False}, {"lowered": True}, {"lowered": True}]
    assert verdicts.lr_reductions({"guard_history": history}) == 2


def test_a_partial_run_is_reported_not_a_crash(tmp_path):
    trained, cures = _cures(
        effects={k: v for k, v in GOOD.items() if k != "guard"},
        skip={("revive", 1e-2, 4), ("revive", 1e-2, 3)},
    )
    cures = [r for r in cures if not (r["cure"]["arm"] == "relu" and r["seed"] == 4)]
    for part, runs in (("trained", trained), ("cures", cures)):
        (tmp_path / part).mkdir()
        for i, run in enumerate(runs):
            (tmp_path / part / f"{i}.json").write_text(json.dumps(run))
    markdown = tmp_path / "DYING.md"
    markdown.write_text(f"preface\n{report.PREFACE_END}\nold text\n")
    report.write_report(tmp_path, markdown)
    text = markdown.read_text()
    assert text.startswith("preface\n") and "old text" not in text
    assert "- arms with no result: revive_zero, revive_keep_state, guard, clipnorm, lamb" in text
    assert "- revive at lr 0.01: seeds [3, 4] missing" in text
    assert "plain ReLU not rerun beside the cures (rate/seed): 0.001/4, 0.003/4" in text
    assert "fewer dead units and higher accuracy: **not measured**. revive at 0.01: 3 seeds" in text
    assert "never lowers the rate: **not measured**. 0 seeds of 5" in text
    # What ran is still judged: the revival at 3e-2 with 5 seeds.
    assert "`ReviveDeadUnits` at 0.03: fewer dead units and higher accuracy: **met**" in text
    # Held-out logit shift of the revival: the largest max and the mean of means.
    assert "| 0.5; 0.2 |" in text


def test_the_cures_table_per_rate_pairs_each_arm_with_relu(tmp_path):
    table, reruns = report.cures_table(_cures()[1], _cures()[0])
    lines = report.cures_rate_markdown(table, reruns, 3e-2)
    (revive,) = [line for line in lines if line.startswith("| ReLU + ReviveDeadUnits |")]
    cells = [cell.strip() for cell in revive.split("|")[1:-1]]
    assert cells[1] == "5"
    assert cells[3].startswith("+5.0 (") and cells[3].endswith(") better")
    assert cells[5] == "-20.0 (-20.0 to -20.0) better"
    assert cells[6] == "1.02x"
    (prelu,) = [line for line in lines if line.startswith("| PReLU")]
    assert cells[7] == "0.5; 0.2"
    assert prelu.split("|")[8].strip() == ""  # No logit shift for an arm that does not revive.


def test_trained_part_pairs_each_variant_with_relu_and_computes_its_figures():
    runs = [_relu(lr, s) for lr in (1e-3, 1e-2) for s in SEEDS]
    runs += [
        _run(lr, s, r["test_accuracy"] + (0.1 if lr == 1e-2 else -0.01), 0.0, variant="prelu")
        for lr in (1e-3, 1e-2)
        for s, r in zip(SEEDS, [_relu(lr, s) for s in SEEDS], strict=True)
    ]
    lines = report.trained_paired_markdown(report.trained_table(runs))
    row = [line for line in lines if line.startswith("| prelu | 0.01 |")][0]
    assert "| 5 | +10.0 (+10.0 to +10.0) better | -50.0 (-50.0 to -50.0) better |" in row
    row = [line for line in lines if line.startswith("| prelu | 0.001 |")][0]
    assert "-1.0 (-1.0 to -1.0) worse" in row
    assert (
        "- At lr 0.001 the variants reach 39.0% (prelu) to 40.0% (relu) test accuracy"
        in "\n".join(lines)
    )
    assert "ReLU has 50% dead units; the variants with no dead unit have inactive fractions" in (
        "\n".join(lines)
    )


def _cifar_runs(accuracies):
    return [
        {
            "arm": arm,
            "seed": seed,
            "params": 1,
            "multiply_adds": 1,
            "test_accuracy": accuracy,
            "test_loss": 1.0,
            "history": {"epoch_seconds": [1.0], "dead_fraction": [0.0], "sparsity": [0.0]},
        }
        for arm, by_seed in accuracies.items()
        for seed, accuracy in enumerate(by_seed)
        if accuracy is not None
    ]


def test_cifar_published_claims_agree_disagree_or_tie_by_the_paired_interval():
    runs = _cifar_runs(
        {  # arm: test accuracy at seeds 0, 1, 2 (None: not run)
            "relu": (0.80, 0.81, 0.805),
            "gelu": (0.83, 0.84, 0.835),  # 3 points above ReLU at every seed: agrees.
            "elu": (0.805, 0.80, 0.815),  # -0.5, +1.0, -1.0 points against ReLU: a tie.
            "rrelu": (0.78, 0.78, 0.785),  # -2, -3, -2: disagrees (interval below 0).
            "selu": (0.79, None, None),  # One seed: no interval.
        }
    )
    assert {a for _, tiers in cifar_report.PUBLISHED for tier in tiers for a in tier} <= set(
        cifar_report.model_lib.ARMS
    )  # Every claim names an arm the example trains (a typo would read "not run yet").
    lines = cifar_report.compare_with_published(cifar_report.summarize_runs(runs))
    verdicts_ = {line.split(" | ")[0].lstrip("| "): line for line in lines}
    assert verdicts_["gelu > relu"] == (
        "| gelu > relu | +3.00 (95% interval +3.00 to +3.00, 3 seeds) | +3.00, +3.00, +3.00 "
        "| agrees |"
    )
    assert verdicts_["relu > elu"].endswith("| -0.50, +1.00, -1.00 | tie |")
    assert verdicts_["rrelu > relu"].startswith("| rrelu > relu | -2.33 (95% interval -3.77 to")
    assert verdicts_["rrelu > relu"].endswith("| disagrees |")
    assert verdicts_["elu > selu"] == "| elu > selu | +1.50 | +1.50 | none: needs two seeds |"
    assert verdicts_["relu6 > relu"] == "| relu6 > relu | | | not run yet |"


def test_cifar_against_relu_says_tie_with_mean_and_spread_in_the_cells():
    runs = _cifar_runs(
        {
            "relu": (0.80, 0.81, 0.805),
            "gelu": (0.83, 0.84, 0.835),
            "elu": (0.805, 0.80, 0.815),
            "selu": (0.79, 0.70, None),  # Seed 2 of ReLU has no SELU: paired over two.
        }
    )
    lines = cifar_report.against_relu(runs)
    assert lines[0].startswith("Paired by seed with 95% intervals over 2 seeds against ReLU")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert list(rows)[1:] == ["relu", "gelu", "elu", "selu"]  # Best first after ReLU.
    assert rows["relu"] == "| relu | 80.50 ± 0.50% | |"
    assert rows["gelu"] == (
        "| gelu | 83.50 ± 0.50% | +3.00 points (95% interval +3.00 to +3.00, 3 seeds): better |"
    )
    assert rows["elu"].startswith("| elu | 80.67 ± 0.76% | +0.17 points") and rows["elu"].endswith(
        ": tie |"
    )
    assert rows["selu"].endswith("2 seeds): tie |")
    assert cifar_report.against_relu(_cifar_runs({"gelu": (0.8, 0.9)})) == []


def test_how_early_the_gradient_warning_came_is_computed_from_the_runs():
    from dying import gradients

    def run(seed, warned, dying_step):
        return {
            "variant": "relu",
            "learning_rate": 1e-2,
            "seed": seed,
            "remedy": None,
            "gradient_warnings": [{"step": warned}],
            "dead_unit_warnings": ["Epoch 1: dead units above 0.2"],
            "steps_per_epoch": 50,
            "config": {"every": 4},
            "every_few_batches": [
                {"step": 4, "dead_fraction/dense": 0.1},
                {"step": dying_step, "dead_fraction/dense": 0.3},
            ],
        }

    answers = gradients._answers([run(0, 12, 8), run(1, 16, 12)])
    (bullet,) = [line for line in answers if line.startswith(gradients.HOW_EARLY)]
    assert "`GradientMonitor` warned at step 12-16 of ReLU's 2 runs at 1e-2" in bullet
    assert "`DeadUnitMonitor` (which measures once an epoch) at step 50" in bullet
    assert "more than 20% dead at step 8-12" in bullet
    assert len(answers) == len(gradients.ANSWERS)
