"""Input rules for items."""

from __future__ import annotations

import pytest

from dmitems.errors import ValidationFailed
from dmitems.schemas import ItemCreate, ItemUpdate, parse


def test_create_trims_the_name_and_accepts_integer_text() -> None:
    item = parse(ItemCreate, {"name": "  机械键盘 ", "price": " 199 "})
    assert item.name == "机械键盘" and item.price == 199 and item.description is None


def test_name_length_counts_characters_not_bytes() -> None:
    assert parse(ItemCreate, {"name": "键" * 255, "price": 1}).name == "键" * 255


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ({"name": "", "price": 1}, "name"),
        ({"name": "   ", "price": 1}, "name"),
        ({"name": "x" * 256, "price": 1}, "name"),
        ({"name": "x", "price": -1}, "price"),
        ({"name": "x", "price": 1.5}, "price"),
        ({"name": "x", "price": 2.0}, "price"),
        ({"name": "x", "price": True}, "price"),
        ({"name": "x", "price": "1e3"}, "price"),
        ({"name": "x", "price": 2**31}, "price"),
        ({"name": "x", "price": 1, "description": "d" * 501}, "description"),
        ({"name": "x", "price": 1, "colour": "red"}, "colour"),
        ({"price": 1}, "name"),
    ],
)
def test_create_rejects(data: dict, location: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(ItemCreate, data)
    assert [where for where, _ in caught.value.problems] == [location]
    assert location in caught.value.message


def test_update_is_partial_and_null_clears_only_the_description() -> None:
    assert parse(ItemUpdate, {"price": 5}).changes() == {"price": 5}
    assert parse(ItemUpdate, {"description": None}).changes() == {"description": None}
    for field in ("name", "price"):
        with pytest.raises(ValidationFailed, match="cannot be null"):
            parse(ItemUpdate, {field: None})
    with pytest.raises(ValidationFailed, match="nothing to update"):
        parse(ItemUpdate, {})


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (1.8446744073709552e19, "less than or equal to 2147483647"),  # 2**64 parsed as a float
        (-1.2345678901234568e29, "greater than or equal to 0"),
        (1e30, "less than or equal to 2147483647"),
        (2.0, "not a decimal number"),
    ],
)
def test_integers_too_long_for_64_bits_are_out_of_range_not_decimals(price: float, reason: str) -> None:
    """The API parses JSON with orjson, which gives integers beyond 64 bits as floats."""
    with pytest.raises(ValidationFailed) as caught:
        parse(ItemCreate, {"name": "x", "price": price})
    assert reason in caught.value.message
