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


# -- the seed's schemas (compat routes) ------------------------------------------------

SEED_CASES = [
    ({"name": "  键盘 ", "price": 2.0, "color": "red", "id": 5}, None),  # lax, extras ignored
    ({"name": "x", "description": None, "price": "7"}, None),
    ({"name": "   ", "price": 1}, ("name", "value_error")),
    ({"name": "x", "price": True}, ("price", "int_type")),
    ({"name": "x", "price": 2.5}, ("price", "int_from_float")),
    ({"name": "x", "price": 2**31}, ("price", "less_than_equal")),
    ({"name": "x", "price": -1}, ("price", "greater_than_equal")),
    ({"name": "x" * 256, "price": 1}, ("name", "string_too_long")),
    ({"name": "x", "description": "d" * 501, "price": 1}, ("description", "string_too_long")),
    ({"price": 1}, ("name", "missing")),
]


@pytest.mark.parametrize(("data", "problem"), SEED_CASES)
def test_seed_row_checks_what_the_seed_model_checks(data: dict, problem: tuple | None) -> None:
    """The batch route's plain-dict type and the single-item model give the same answers."""
    from pydantic import TypeAdapter, ValidationError

    from dmitems.schemas import CompatItemCreate, CompatItemRow

    answers = []
    for validate in (CompatItemCreate.model_validate, TypeAdapter(CompatItemRow).validate_python):
        try:
            result = validate(data)
        except ValidationError as error:
            answers.append([(e["loc"][0], e["type"]) for e in error.errors()])
        else:
            row = result if isinstance(result, dict) else result.model_dump(exclude_unset=True)
            answers.append(row)
    assert answers[0] == answers[1]
    if problem is None:
        assert answers[0]["name"] == data["name"] and "color" not in answers[0]
    else:
        assert answers[0] == [problem]


def test_seed_update_keeps_what_is_missing_or_null() -> None:
    from dmitems.schemas import CompatItemUpdate

    assert CompatItemUpdate.model_validate({}).changes() == {}
    update = CompatItemUpdate.model_validate({"name": None, "description": None, "price": 3.0,
                                              "color": "red"})
    assert update.changes() == {"price": 3}
