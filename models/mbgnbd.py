"""MBG/NBD: BG/NBD in which a customer may also drop out right after her first purchase.

Batislam, Denizel and Filiztekin (2007), "Empirical validation and comparison of models for customer
base analysis", International Journal of Research in Marketing 24(3). Same story as BG/NBD
(`models.bgnbd`): while alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha)
and drops out with probability p ~ Beta(a, b), but the first purchase is also a drop-out chance.
So a customer with one purchase long ago is probably gone: P(alive | x = 0) =
1 / (1 + a / b ((alpha + T) / alpha)^r) falls as T grows, where BG/NBD says 1 whatever T.

Given alive after x repeat purchases she survived x + 1 chances, so p ~ Beta(a, b + x + 1): every
BG/NBD expression holds with b + x + 1 in place of b + x (likelihood and P(alive) in
`models.bgnbd._log_likelihood` and `_p_alive` with `first_dropout=1`; the conditional expectation is
BG/NBD's eq. 10 with b + 1, as in BTYDplus' `mbgnbd.ConditionalExpectedTransactions`).
Inputs, units and interface are BG/NBD's.
"""

from __future__ import annotations

from models.bgnbd import BetaGeoModel


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD with maximum likelihood fitting; parameters r, alpha, a, b as in BG/NBD."""

    FIRST_DROPOUT = 1
