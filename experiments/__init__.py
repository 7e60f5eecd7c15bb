"""The experiments wing: bandit experiments (:mod:`~gradgap.experiments.bandits`) and real GRPO training runs
(:mod:`~gradgap.experiments.grpo`), each set against the theory's predictions.

It imports :mod:`gradgap.theory`, :mod:`gradgap.numerics` and the claims' evidence types of
:mod:`gradgap.proofs_check`; neither twin imports it.
"""
