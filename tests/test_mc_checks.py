"""The Monte-Carlo check itself can fail: with the test's own standard error it rejects an estimator whose
reported standard error is 10x too large or 10x too small (scale), and one whose mean is off (coverage), while
the real estimators pass (tests/mc_checks.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gradgap.numerics import softmax
from gradgap.theory.instances import SoftmaxBandit
from tests.mc_checks import assert_estimator, coverage_and_scale, replicate

INST = SoftmaxBandit(logits=(0.3, -1.2, 2.0, 0.5), correct=frozenset({0, 2}))
EXACT_GAP = softmax.gradient_gap(INST)


def _real(seed: int):
    return softmax.gradient_gap(INST, method="mc", n=2000, seed=seed)


def test_the_real_estimator_passes_coverage_and_scale():
    assert_estimator("gradient_gap", _real, EXACT_GAP, seed=11)


@pytest.mark.parametrize("factor", [10.0, 0.1])
def test_a_standard_error_off_by_ten_fails_the_scale_test(factor):
    means, errors = replicate(lambda s: replace(_real(s), stderr=np.asarray(_real(s).stderr) * factor), 11)
    bad = coverage_and_scale(means, errors, EXACT_GAP)
    assert any(b.startswith("scale") for b in bad), bad
    # the old one-sided z-test with the estimator's own stderr would pass the inflated error
    if factor > 1:
        est = _real(11)
        assert np.all(np.abs(est.mean - EXACT_GAP) <= 4 * np.asarray(est.stderr) * factor)


def test_a_mean_off_by_a_few_standard_errors_fails_the_coverage_test():
    means, errors = replicate(_real, 11)
    shift = 3 * errors.mean(axis=0)  # three single-estimate standard errors: ~19 of the mean's over 40 estimates
    bad = coverage_and_scale(means, errors, EXACT_GAP + shift)
    assert any(b.startswith("coverage") for b in bad), bad


def test_a_coordinate_with_zero_error_must_be_exact():
    means = np.array([[1.0, 0.5], [1.0, 0.6], [1.0, 0.4]])
    errors = np.array([[0.0, 0.1], [0.0, 0.1], [0.0, 0.1]])
    assert coverage_and_scale(means, errors, [1.0, 0.5]) == []
    assert any("stderr at rounding level" in b for b in coverage_and_scale(means, errors, [1.1, 0.5]))


def test_a_coordinate_with_rounding_level_error_must_be_exact():
    """A reported error of 4e-16 on an exact zero (no sample moves it) is judged by exactness, not chi-square."""
    means = np.array([[0.0, 0.5], [1e-16, 0.6], [-1e-16, 0.4]])
    errors = np.array([[4e-16, 0.1], [4e-16, 0.1], [4e-16, 0.1]])
    assert coverage_and_scale(means, errors, [0.0, 0.5]) == []
    assert any("rounding level" in b for b in coverage_and_scale(means, errors, [0.1, 0.5]))
