"""The figures README.md and the documentation quote are the committed results' (rendered
by examples/figures.py between `<!-- fig:NAME -->` markers), and every "better" in them
comes from one paired-interval rule (examples/paired.py)."""

import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import figures  # noqa: E402
import paired  # noqa: E402


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in figures.pages()])
def test_page_figures_are_the_results(page):
    text = (ROOT / page).read_text()
    assert figures.render(text, source=page) == text, (
        f"{page} quotes figures the committed results no longer give: "
        "run `python examples/figures.py --write`"
    )


def test_the_main_pages_render_their_figures():
    """The pages that draw conclusions from results do so through markers."""
    for page in ["README.md", "docs/index.md", "docs/dying-relu/index.md"]:
        names = figures.MARKER.findall((ROOT / page).read_text())
        assert len(names) >= 5, page


def test_no_cifar_accuracy_is_typed_by_hand():
    """A CIFAR-10 mean accuracy appears only where it is generated: between figure markers
    or in the choosing table (tests/test_readme.py checks that one)."""
    values = figures.figures()
    means = {text.split(" ")[0] for name, text in values.items() if name.startswith("cifar.acc.")}
    assert len(means) >= 10
    for path in figures.pages():
        text = figures.MARKER.sub("", path.read_text())
        text = re.sub(
            r"<!-- choose-variant-table.*?<!-- end of choose-variant-table -->",
            "",
            text,
            flags=re.S,
        )
        typed = sorted(mean for mean in means if re.search(rf"(?<![\d.]){re.escape(mean)}", text))
        assert not typed, f"{path.relative_to(ROOT)} types {typed} by hand"


def test_render_replaces_the_marked_text_and_refuses_unknown_names():
    text = "GELU <!-- fig:a -->old<!-- /fig --> and <!-- fig:b -->1<!-- /fig -->."
    assert figures.render(text, {"a": "new", "b": "2"}) == (
        "GELU <!-- fig:a -->new<!-- /fig --> and <!-- fig:b -->2<!-- /fig -->."
    )
    with pytest.raises(KeyError, match="`c` that examples/figures.py does not compute"):
        figures.render("<!-- fig:c -->x<!-- /fig -->", {"a": "1"})


def test_check_and_write(tmp_path, monkeypatch, capsys):
    page = tmp_path / "README.md"
    page.write_text("<!-- fig:cifar.seeds -->7<!-- /fig -->\n")
    monkeypatch.setattr(figures, "pages", lambda: [page])
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    assert figures.main(["--check"]) == 1
    assert "README.md: stale" in capsys.readouterr().out
    assert figures.main(["--write"]) == 0
    assert (
        page.read_text()
        == f"<!-- fig:cifar.seeds -->{figures.figures()['cifar.seeds']}<!-- /fig -->\n"
    )
    assert figures.main(["--check"]) == 0


# The paired-interval rule.


@pytest.mark.parametrize(
    "df, expected",
    # Student's t, 97.5th percentile (any statistics table).
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (9, 2.262), (30, 2.042)],
)
def test_t_quantile_matches_the_table(df, expected):
    assert paired.t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_matches_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats", reason="SciPy comes with JAX in the test extra")
    for df in range(1, 41):
        assert paired.t_quantile(0.95, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
        assert paired.t_quantile(0.9, df) == pytest.approx(stats.t.ppf(0.95, df), rel=1e-9)


def test_paired_difference_by_seed():
    a = {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.99}  # Seed 3 has no partner: left out.
    b = {0: 0.40, 1: 0.55, 2: 0.50}
    difference = paired.paired_difference(a, b)
    d = [0.10, 0.05, 0.20]
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    half = 4.302652729749 * sd / math.sqrt(3)
    assert difference.differences == pytest.approx({0: 0.10, 1: 0.05, 2: 0.20})
    assert (difference.mean, difference.low, difference.high) == pytest.approx(
        (mean, mean - half, mean + half)
    )
    assert difference.low < 0 < difference.high  # Ahead at every seed, yet not shown.
    assert difference.verdict() == "no difference shown"
    assert difference.verdict(same="tie") == "tie"


def test_verdicts():
    same_gap = {0: 0.51, 1: 0.52, 2: 0.53}
    base = {0: 0.50, 1: 0.51, 2: 0.52}
    assert paired.paired_difference(same_gap, base).verdict() == "better"
    assert paired.paired_difference(base, same_gap).verdict() == "worse"
    one = paired.paired_difference({0: 0.9}, {0: 0.1})
    assert one.verdict() == "no difference shown" and one.low is None
    assert one.text() == "+80.0 points (1 seed, no interval)"
    with pytest.raises(ValueError, match="share no seed"):
        paired.paired_difference({0: 1.0}, {1: 1.0})


def test_cifar_verdicts_follow_the_intervals():
    runs = [
        {"arm": arm, "seed": seed, "test_accuracy": accuracy}
        for arm, by_seed in {
            "relu": [0.80, 0.82, 0.81],
            "gelu": [0.83, 0.85, 0.84],  # +3 points at every seed: better.
            "selu": [0.70, 0.90, 0.75],  # Noisy: a tie.
            "crelu_half": [0.70, 0.72, 0.71],
        }.items()
        for seed, accuracy in enumerate(by_seed)
    ]
    values = figures.cifar_figures(runs)
    assert values["cifar.vs_relu.gelu"].endswith(": better")
    assert values["cifar.vs_relu.selu"].endswith(": tie")
    assert values["cifar.verdicts"] == (
        "paired by seed with 95% intervals over 3 seeds against ReLU (81.00 ± 1.00%): "
        "GELU (84.00 ± 1.00%) is better; SELU (78.33 ± 10.41%) ties; "
        "CReLU with half the filters (71.00 ± 1.00%) is worse"
    )


def test_the_site_renders_the_figures_afresh():
    """The documentation build's hook renders stale text with today's figures."""
    pytest.importorskip("mkdocs")  # CI installs the docs extra with the test one.
    pytest.importorskip("latex2mathml")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "keras_relu_docs", ROOT / "docs" / "_hooks" / "keras_relu_docs.py"
    )
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    class Page:
        class file:
            src_uri = "index.md"

    stale = "Seeds: <!-- fig:cifar.seeds -->99<!-- /fig -->."
    expected = f"Seeds: <!-- fig:cifar.seeds -->{figures.figures()['cifar.seeds']}<!-- /fig -->."
    assert hook.on_page_markdown(stale, page=Page) == expected


# Benchmark figures with no committed JSON behind them, only the tables of
# benchmarks/RESULTS.md (each with its command, date and load): typed by hand, so each is
# checked against that source. (page, text on the page, text in benchmarks/RESULTS.md)
HAND_TYPED = [
    ("docs/performance.md", "48 MiB against ReLU's 64 MiB", "48 MiB vs 64 MiB"),
    ("docs/performance.md", "took 1787 ms for 4M numbers", "| 1787 |"),
    ("docs/performance.md", "and Philox 30.6 ms", "| 30.6 |"),
    (
        "docs/performance.md",
        "21.6 ms against Leaky ReLU's 7.3 ms",
        "21.6 ms vs Leaky ReLU's 7.3 ms",
    ),
    ("docs/performance.md", "105 ms against 18.7 ms", "JAX 105 ms vs 18.7 ms"),
    (
        "docs/performance.md",
        "1.1-1.3x its build on TensorFlow and 1.3-1.7x on JAX",
        "1.1-1.3x on TensorFlow and 1.3-1.7x on JAX",
    ),
    (
        "docs/swap.md",
        "1.1-1.3x its build on TensorFlow and 1.3-1.7x on JAX",
        "1.1-1.3x on TensorFlow and 1.3-1.7x on JAX",
    ),
    ("docs/performance.md", "(1.70x, 1.80x in other runs)", "TF 1.51x [1.70x, 1.80x;"),
    ("docs/performance.md", "0.8-1.3x the memory-copy floor", "0.8-1.3x the copy floor"),
    ("docs/export.md", "1.27x their time with 2 threads", "| 2 | 16.0 ms | 20.3 ms | 1.27 |"),
    ("docs/export.md", "1.93x with 1", "| 1 | 13.2 ms | 25.6 ms | 1.93 |"),
    ("docs/performance.md", "1.27x their time with 2 threads", "| 2 | 16.0 ms | 20.3 ms | 1.27 |"),
    ("docs/performance.md", "1.93x with 1", "| 1 | 13.2 ms | 25.6 ms | 1.93 |"),
]


def test_threefry_is_three_times_faster_than_philox_under_xla():
    """docs/performance.md's "Philox ... is 3x slower under XLA": the two generators'
    times in the table of benchmarks/RESULTS.md."""
    source = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    philox = re.search(r'TF XLA `alg="philox"`[^|]*\| ([\d.]+) \|', source)
    threefry = re.search(r'TF XLA `alg="threefry"`[^|]*\| ([\d.]+) \|', source)
    assert float(philox.group(1)) / float(threefry.group(1)) == pytest.approx(3, rel=0.1)


@pytest.mark.parametrize("page, on_page, in_source", HAND_TYPED)
def test_hand_typed_benchmark_figures_match_their_source(page, on_page, in_source):
    text = " ".join((ROOT / page).read_text().split())
    source = " ".join((ROOT / "benchmarks" / "RESULTS.md").read_text().split())
    assert on_page in text, f"{page} no longer says {on_page!r}: update HAND_TYPED"
    assert in_source in source, f"benchmarks/RESULTS.md no longer says {in_source!r}"


def _study_run(variant, lr, seed, accuracy, dead=0.0, **extra):
    config = {"train_images": 100, "test_images": 50, "epochs": 2, "batch_size": 10}
    return {
        "variant": variant,
        "learning_rate": lr,
        "seed": seed,
        "test_accuracy": accuracy,
        "config": {**config, "optimizer": "adam", "commit": f"c{seed}"},  # Provenance differs.
        "history": {"dead_fraction": [0.0, dead], "inactive_fraction": [0.0, dead]},
        "dead_unit_warnings": ["Epoch 1: dead units above 20%"] if dead > 0.2 else [],
        **extra,
    }


def test_study_figures_word_each_comparison_from_its_interval():
    """Five seeds, as the rerun study will have: PReLU ahead at every seed is "better";
    RReLU ahead on average but not at every seed is "no difference shown"."""
    relu = [0.10, 0.12, 0.30, 0.15, 0.20]
    runs = [_study_run("relu", 0.01, s, a, dead=0.5) for s, a in enumerate(relu)]
    runs += [_study_run("prelu", 0.01, s, a + 0.10) for s, a in enumerate(relu)]
    runs += [
        _study_run("rrelu", 0.01, s, a + d)
        for s, (a, d) in enumerate(zip(relu, [0.3, -0.2, 0.3, -0.1, 0.2], strict=True))
    ]
    values = figures.trained_figures(runs)
    assert values["trained.seeds"] == "5"
    assert values["trained.vs_relu.prelu.1e-2"].endswith(": better")
    assert values["trained.vs_relu.rrelu.1e-2"].endswith(": no difference shown")
    assert values["trained.dead_fraction.relu.1e-2"] == "50%"
    assert values["trained.relu_by_seed.1e-2"] == "10%, 12%, 15%, 20% and 30%"
    assert values["trained.warned"] == (
        "warned (runs with a warning / runs) for ReLU at 1e-2 (5/5); never for PReLU and RReLU"
    )

    cures = [
        _study_run("relu", lr, s, a + 0.2, cure={"arm": "schedule"})
        for lr in (0.01, 0.03)
        for s, a in enumerate(relu)
    ]
    trained = runs + [_study_run("relu", 0.03, s, a) for s, a in enumerate(relu)]
    values = figures.cures_figures(cures, trained)
    assert values["cures.rates"] == "1e-2 and 3e-2"
    assert values["cures.best"].startswith(
        "a warm-up and cosine decay of the rate: 37% test accuracy against"
    )
    assert values["cures.best"].endswith("10 paired runs): better")
    assert values["cures.vs_relu.schedule.3e-2"].endswith("5 seeds): better")


def test_targets_are_judged_from_their_figures():
    values = {source: "2.00x" for source, _, _ in figures.TARGETS.values()}
    verdicts = figures.target_figures(values)
    assert verdicts["target.prelu_eager_tf"] == "met"  # At least 2x: 2.00x meets it.
    assert verdicts["target.prelu_compiled_tf"] == "**missed**"  # At most 1.15x.
    values = {source: "1.10x" for source, _, _ in figures.TARGETS.values()}
    verdicts = figures.target_figures(values)
    assert verdicts["target.prelu_eager_jax"] == "**missed**"
    assert verdicts["target.prelu_compiled_tf"] == "met"
