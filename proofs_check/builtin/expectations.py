r"""The evidence every built-in claim must reach (at its expected status): the gate's memory of what was done.

A claim that reaches its expected status below the strength declared here turns the gate red with
``evidence regressed: PROVED → TESTED`` (:mod:`gradgap.proofs_check.evidence`); a claim that must be
``PROVED`` and whose proof is ``UNDECIDED`` FAILS. A new built-in claim must be added here
(``tests/test_evidence.py`` checks that every built-in id has an entry and no entry is stale). Raising an
entry is a promise; lowering one must be argued in the commit.

For refuted claims (``expect = "fails"``) the entry is the strength of the refutation.

``CHECKED`` entries are checks on fixed instances or on a theory-only grid (or a refutation at fixed pinned
points): an honest label, not a regression from ``TESTED`` (which needs a search over at least the profile's
minimum number of distinct examples).
"""

from __future__ import annotations

from typing import Final

from gradgap.proofs_check.claims import Strength

__all__ = ["REQUIRED"]

#: claim id -> the strength it must reach
REQUIRED: Final[dict[str, Strength]] = {
    "score-mean-zero": Strength.PROVED,
    "gap-conditional-scores": Strength.PROVED,
    "grad-J-variance-gap": Strength.PROVED,
    "gap-grad-log-odds": Strength.PROVED,
    "gap-token-sum": Strength.PROVED,
    "gap-unique-correct": Strength.PROVED,
    "constant-G_o": Strength.PROVED,
    "constant-L_o": Strength.TESTED,
    "constant-smoothness_J": Strength.TESTED,
    "mc-standard-errors": Strength.CHECKED,
    "gain-reinforce": Strength.PROVED,
    "gain-rloo": Strength.PROVED,
    "gain-grpo": Strength.PROVED,
    "gain-dr-grpo": Strength.PROVED,
    "gain-dapo": Strength.PROVED,
    "gain-limits": Strength.CHECKED,
    "advantage-mass-form": Strength.PROVED,
    "grpo-epsilon-bound": Strength.CHECKED,
    "sequence-level-parallel-varlen": Strength.PROVED,
    "token-level-parallel-fixed": Strength.CHECKED,
    "token-level-parallel-varlen": Strength.PROVED,
    "one-step-paper-softmax": Strength.TESTED,
    "one-step-derived-softmax": Strength.TESTED,
    "one-step-loglinear-softmax": Strength.TESTED,
    "one-step-half-sharp-softmax": Strength.CHECKED,
    "one-step-paper-tokens": Strength.TESTED,
    "one-step-derived-tokens": Strength.TESTED,
    "one-step-loglinear-tokens": Strength.TESTED,
    "one-step-half-sharp-tokens": Strength.CHECKED,
    "one-step-paper-shared-tokens": Strength.TESTED,
    "one-step-derived-shared-tokens": Strength.TESTED,
    "one-step-loglinear-shared-tokens": Strength.TESTED,
    "one-step-half-sharp-shared-tokens": Strength.CHECKED,
    "sharpest-constant-values": Strength.TESTED,
    "theorem1-logit-inversion": Strength.PROVED,
    "theorem1-step-paper-softmax": Strength.TESTED,
    "theorem1-step-sharp-softmax": Strength.TESTED,
    "theorem1-step-paper-tokens": Strength.TESTED,
    "theorem1-step-sharp-tokens": Strength.TESTED,
    "theorem1-step-paper-shared-tokens": Strength.TESTED,
    "theorem1-step-sharp-shared-tokens": Strength.TESTED,
    "theorem1-trajectories-softmax": Strength.SIMULATED,
    "theorem1-trajectories-tokens": Strength.SIMULATED,
    "theorem1-trajectories-shared-tokens": Strength.SIMULATED,
    "collapse-threshold-worked-example-closed-form": Strength.PROVED,
    "collapse-threshold-worked-example": Strength.SIMULATED,
    "length-law-worked-unnormalized-closed-form": Strength.PROVED,
    "length-law-worked-unnormalized": Strength.SIMULATED,
    "length-law-worked-normalized-closed-form": Strength.PROVED,
    "length-law-worked-normalized": Strength.SIMULATED,
    "length-law-fixed-success-unnormalized-closed-form": Strength.PROVED,
    "length-law-fixed-success-unnormalized": Strength.SIMULATED,
    "length-law-fixed-success-normalized-closed-form": Strength.PROVED,
    "length-law-fixed-success-normalized": Strength.SIMULATED,
    "success-rate-law-closed-form": Strength.PROVED,
    "success-rate-law": Strength.SIMULATED,
    "tabular-no-stagnation-closed-form": Strength.PROVED,
    "tabular-no-stagnation": Strength.SIMULATED,
    "stagnation-shared-not-reproduced": Strength.SIMULATED,
    "stochastic-threshold-single-success": Strength.SIMULATED,
    "one-step-derived-softmax-box": Strength.CERTIFIED,
    "theorem1-step-below-eta-star": Strength.CERTIFIED,
    "autoregressive-score-mean-zero": Strength.PROVED,
    "autoregressive-grad-J-variance-gap": Strength.PROVED,
    "autoregressive-gap-grad-log-odds": Strength.PROVED,
    "autoregressive-gap-unique-correct": Strength.PROVED,
    "autoregressive-prefix-dp": Strength.TESTED,
    "autoregressive-constant-G_o": Strength.TESTED,
    "autoregressive-constant-L_o": Strength.TESTED,
    "autoregressive-grpo-length-weighted-gap": Strength.CHECKED,
    "autoregressive-grpo-parallel-to-gap-with-eos": Strength.CHECKED,
    "autoregressive-eos-angle": Strength.CHECKED,
    "autoregressive-eos-normalisation-factor": Strength.CHECKED,
    "autoregressive-half-progress-about-1-over-T": Strength.CHECKED,
    "one-step-paper-contextual": Strength.TESTED,
    "one-step-derived-contextual": Strength.TESTED,
    "one-step-loglinear-contextual": Strength.TESTED,
    "one-step-half-sharp-contextual": Strength.CHECKED,
    "theorem1-step-paper-contextual": Strength.TESTED,
    "theorem1-step-sharp-contextual": Strength.TESTED,
    "theorem1-trajectories-contextual": Strength.SIMULATED,
    "contextual-grad-J-per-prompt": Strength.PROVED,
    "contextual-group-update": Strength.TESTED,
    "contextual-centred-parallel": Strength.PROVED,
    "contextual-grpo-ascends": Strength.CERTIFIED,
    "contextual-critical-step": Strength.SIMULATED,
    "contextual-grpo-biased-fixed-point": Strength.SIMULATED,
    "contextual-length-critical-step": Strength.SIMULATED,
    "contextual-length-threshold-shrinks": Strength.SIMULATED,
    "contextual-length-threshold-shrinks-gap": Strength.SIMULATED,
    "contextual-length-normalised-biased-fixed-point": Strength.SIMULATED,
    "contextual-adam-stagnation": Strength.SIMULATED,
    "contextual-sgd-no-stagnation": Strength.SIMULATED,
    "contextual-no-aligned-collapse": Strength.SIMULATED,
    "aligned-potential-inequality": Strength.TESTED,
    "aligned-no-collapse": Strength.SIMULATED,
}
