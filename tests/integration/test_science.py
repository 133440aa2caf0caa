"""The science miniature (bench/science_check.py) at the bench's scale, one seed: the critic, trained
with the shipped stage-1 settings on a task where correctness needs computation, separates held-out
rows, its TD error is negative where a solution first goes wrong, and `signal: cumulative` takes loss
mass away from incorrect rows where the default one-step δ leaves it.

The thresholds are the issue's targets. MEASURED (docs/benchmarks.md, "Science miniature", 5 seeds):
with the shipped stage-1 settings the held-out AUC stays at 0.48-0.53, i.e. chance, on the `judged`
base (pre-trained to check sums; it learns the per-line verdicts, 0.955, but not the verdict after
the whole solution, 0.50, so nothing at the state the value head reads says whether the solution was
right). So the method test is a strict xfail on AssertionError (a crash still fails): it XPASSes, and
fails the suite, the day the pipeline reaches the targets at this scale, and then the marker must go.
The plain tests hold what does work: the base learns to check a line, stage 1 exports its best head.
"""

from __future__ import annotations

import runpy

import pytest

from tests.integration.helpers import ROOT

pytestmark = pytest.mark.slow
KNOWN_GAP = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="shipped stage-1 settings reach AUC 0.48-0.53 on the miniature (the base does not encode the outcome); see docs/benchmarks.md",
)

# The bench's scale (3000 pre-training steps, where the base learns its per-line verdicts; 300 stage-1
# steps), one seed, smaller validation and a shorter stage 2.
SMALL = {
    "pretrain_steps": 3000,
    "stage2_steps": 20,
    "val_correct": 128,
    "val_incorrect": 128,
    "probe_train_rows": 1024,
}
MIN_AUC = 0.9  # the aim; not reached (see the module docstring)
MAX_DELTA_AT_WRONG = -0.05


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    bench = runpy.run_path(str(ROOT / "bench" / "science_check.py"), run_name="bench")
    return bench["run"]([0], tmp_path_factory.mktemp("science"), bench["Scale"](**SMALL))


def test_the_judged_base_learns_to_check_a_line(result):
    """The premise's first half, measured on held-out judged text: the base model checks single sums
    (its verdict on the whole solution is the xfail's first check)."""
    pre = result["pretrain"]
    assert pre["corpus"] == "judged" and pre["verdict_balanced_acc_line"] >= 0.9, pre


def test_stage1_exports_its_best_auc(result):
    s1 = result["runs"][0]["stage1"]
    assert s1["auc_per_validation"] and s1["auc_best"] == max(s1["auc_per_validation"]), s1


@KNOWN_GAP
def test_critic_finds_the_bug_and_cumulative_takes_mass_from_incorrect_rows(result):
    """One test, in the order the method depends on: without a critic that separates the rows
    (the first check) the TD errors and the weights derived from them are noise, so the later
    checks would pass or fail by chance and must not decide the verdict on their own."""
    pre = result["pretrain"]
    assert pre["verdict_balanced_acc_solution"] >= 0.9, pre  # the base encodes the outcome at all
    s1 = result["runs"][0]["stage1"]
    assert s1["auc_best"] >= MIN_AUC, s1
    p = result["runs"][0]["probe"]
    assert p["delta_at_first_wrong_mean"] < MAX_DELTA_AT_WRONG, p
    assert p["delta_at_first_wrong_mean"] < p["delta_elsewhere_mean"] - 0.05, p
    s2 = result["runs"][0]["stage2"]
    delta, cumulative = s2["delta"], s2["cumulative"]
    assert cumulative["loss_mass_share_incorrect"] < delta["loss_mass_share_incorrect"], s2
    assert cumulative["weight_mean_incorrect"] < delta["weight_mean_incorrect"], s2
