"""Telling customer bases apart from their bottom-k sketches: the same shop, part of it, a shop grown since,
and another shop (training.tracking)."""

from __future__ import annotations

import hashlib

import pytest

from training.tracking import SKETCH_SIZE, contained, one_holds_the_other, other_shop, shared_customers


def sketch(ids: range, shop: str = "A") -> list[str]:
    """The sketch `customer_sketch` keeps of these customers: the smallest MD5 digests."""
    return sorted(hashlib.md5(f"{shop}{i}|2025-01-01".encode()).hexdigest() for i in ids)[:SKETCH_SIZE]


BASE = range(5000)


@pytest.mark.parametrize(
    ("scored", "same", "other"),
    [
        (sketch(BASE), True, False),
        # A tenth of the shop (a region, a sample) shares 10% Jaccard, but every customer is known.
        (sketch(range(500)), False, False),
        # The shop ten times the size it was trained at still holds its old base.
        (sketch(range(50000)), False, False),
        # Another shop, its ids 0, 1, 2... too.
        (sketch(BASE, shop="B"), False, True),
    ],
)
def test_part_of_a_shop_or_a_grown_one_is_not_another_shop(scored, same, other):
    trained = sketch(BASE)
    assert (shared_customers(scored, trained) >= 0.2) == same
    assert other_shop(scored, trained) == other


def test_containment_is_estimated_from_the_digests_in_range_and_unknown_from_too_few():
    trained = sketch(BASE)
    assert contained(sketch(range(500)), trained) is None  # about 6 of its 64 digests in range: too few
    assert contained(trained, sketch(range(500))) == pytest.approx(0.1, abs=0.08)
    assert contained(sketch(range(50)), sketch(range(40))) == 40 / 50  # small bases: whole sketches


@pytest.mark.parametrize(
    ("scored", "holds"),
    [
        (sketch(range(2500)), True),  # half the shop: 32 of its digests in range, every one found
        (sketch(range(20000)), True),  # the shop four times the size: 16 of the old base's digests in range
        (sketch(range(500)), False),  # a tenth: too few digests in range to tell, and the other way 10%
        (sketch(BASE, shop="B"), False),
    ],
)
def test_one_base_holding_the_other_is_told_only_where_the_sketches_can_tell(scored, holds):
    assert one_holds_the_other(scored, sketch(BASE)) == holds
