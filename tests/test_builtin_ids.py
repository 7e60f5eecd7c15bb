"""The set of built-in claim ids is pinned: a renamed, dropped or added claim (or claim module) fails here until
this list changes with it (the list was read off ``gradgap check --profile ci --json``)."""

from __future__ import annotations

from gradgap.proofs_check.builtin import builtin_claims

#: the built-in claim ids, in report order
BUILTIN_IDS: tuple[str, ...] = (
    "score-mean-zero",
    "gap-conditional-scores",
    "grad-J-variance-gap",
    "gap-grad-log-odds",
    "gap-token-sum",
    "gap-unique-correct",
    "constant-G_o",
    "constant-L_o",
    "mc-standard-errors",
    "gain-reinforce",
    "gain-rloo",
    "gain-grpo",
    "gain-dr-grpo",
    "gain-dapo",
    "gain-limits",
    "advantage-mass-form",
    "grpo-epsilon-bound",
    "sequence-level-parallel-varlen",
    "token-level-parallel-fixed",
    "token-level-parallel-varlen",
    "one-step-paper-softmax",
    "one-step-derived-softmax",
    "one-step-loglinear-softmax",
    "one-step-half-sharp-softmax",
    "one-step-paper-tokens",
    "one-step-derived-tokens",
    "one-step-loglinear-tokens",
    "one-step-half-sharp-tokens",
    "one-step-paper-shared-tokens",
    "one-step-derived-shared-tokens",
    "one-step-loglinear-shared-tokens",
    "one-step-half-sharp-shared-tokens",
    "sharpest-constant-values",
    "theorem1-logit-inversion",
    "theorem1-step-paper-softmax",
    "theorem1-step-sharp-softmax",
    "theorem1-step-paper-tokens",
    "theorem1-step-sharp-tokens",
    "theorem1-step-paper-shared-tokens",
    "theorem1-step-sharp-shared-tokens",
    "theorem1-trajectories-softmax",
    "theorem1-trajectories-tokens",
    "theorem1-trajectories-shared-tokens",
    "collapse-threshold-worked-example-closed-form",
    "collapse-threshold-worked-example",
    "length-law-worked-unnormalized-closed-form",
    "length-law-worked-unnormalized",
    "length-law-worked-normalized-closed-form",
    "length-law-worked-normalized",
    "length-law-fixed-success-unnormalized-closed-form",
    "length-law-fixed-success-unnormalized",
    "length-law-fixed-success-normalized-closed-form",
    "length-law-fixed-success-normalized",
    "success-rate-law-closed-form",
    "success-rate-law",
    "tabular-no-stagnation-closed-form",
    "tabular-no-stagnation",
    "stagnation-shared-not-reproduced",
    "stochastic-threshold-single-success",
    "one-step-derived-softmax-box",
    "theorem1-step-below-eta-star",
)


def test_builtin_claim_ids_are_the_pinned_list():
    ids = tuple(claim.id for claim in builtin_claims())
    assert set(ids) == set(BUILTIN_IDS), (sorted(set(ids) - set(BUILTIN_IDS)), sorted(set(BUILTIN_IDS) - set(ids)))
    assert ids == BUILTIN_IDS
