"""A policy of your own for gradgap: a tiny torch language model whose response space is enumerated exactly.

Vocabulary {0, 1, 2}, responses of length 2 (all 9 are listed), reward 1 for the response (2, 0). The model shares
its parameters across positions (a start vector, a token embedding and one output head), so it is neither tabular
nor log-linear: exactly the kind of policy the built-in families do not cover.

    gradgap gap custom --module examples/custom_policy.py:make_policy
    gradgap gap custom --module examples/custom_policy.py:make_policy --claims examples/custom_claims.toml

or from Python: ``from gradgap.proofs_check.custom import report, check_policy``.
"""

from __future__ import annotations

import itertools

import torch

from gradgap.proofs_check.custom import CustomPolicy

V, T, WIDTH = 3, 2, 2


class TinyLM(torch.nn.Module):
    r""":math:`\log\pi(o)=\sum_t\log\mathrm{softmax}(h_t W)_{o_t}`, :math:`h_1` a start vector,
    :math:`h_{t+1}=E[o_t]` the embedding of the previous token."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.start = torch.nn.Parameter(torch.randn(WIDTH, generator=gen))
        self.embed = torch.nn.Parameter(0.5 * torch.randn(V, WIDTH, generator=gen))
        self.head = torch.nn.Parameter(torch.randn(WIDTH, V, generator=gen))

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        """``(N, T)`` token ids -> ``(N,)`` log-probabilities."""
        n = responses.shape[0]
        h = torch.cat([self.start.expand(n, 1, WIDTH), self.embed[responses[:, :-1]]], dim=1)
        logp = torch.log_softmax(h @ self.head, dim=-1)
        return logp.gather(-1, responses[..., None]).squeeze(-1).sum(-1)


def make_policy() -> CustomPolicy:
    """The policy gradgap loads: every response of length T, reward 1 for (2, 0)."""
    responses = list(itertools.product(range(V), repeat=T))
    return CustomPolicy.from_module(TinyLM(), responses, lambda o: int(tuple(o) == (2, 0)), name="tiny-lm")
