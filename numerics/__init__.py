"""gradgap numerics: see docs/DESIGN.md for the names this package shares with its twin.

The family registry (name -> instance type, twin modules, strategy, size parameters) is
``gradgap.proofs_check.families``.
"""
