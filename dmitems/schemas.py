"""Pydantic v2 schemas: what a user may send, and what dmitems returns."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import NotRequired, TypedDict

from dmitems.errors import ValidationFailed
from dmitems.models import DESCRIPTION_MAX, NAME_MAX

PRICE_MAX = 2_147_483_647  # the column is a 32-bit INTEGER on every backend
_INTEGER_TEXT = re.compile(r"[+-]?\d+")


def _price_input(value: Any) -> Any:
    """Accept ints and integer text (CSV cells); refuse bools and floats outright."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 2**63:
            # A JSON integer too long for 64 bits, which orjson (the API's parser) hands
            # back as a float: out of range, not a decimal.
            bound = f"less than or equal to {PRICE_MAX}" if value > 0 else "greater than or equal to 0"
            raise ValueError(f"Input should be {bound}")
        raise ValueError("must be an integer, not a decimal number")
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise ValueError("must be an integer")
        return int(text)
    return value


def _as_utc(value: datetime) -> datetime:
    # SQLite and DM hand back naive timestamps; dmitems stores UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]
# Constraints before the validator, so pydantic-core checks them natively on the int
# (placed after it, they run as Python validators: 3x slower on bulk imports).
Price = Annotated[int, Field(ge=0, le=PRICE_MAX), BeforeValidator(_price_input)]


class ItemCreate(BaseModel):
    """A new item."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="商品名称, 1-255 characters after trimming")
    description: Description | None = Field(None, description="商品描述, at most 500 characters")
    price: Price = Field(description="价格, an integer >= 0")


class ItemUpdate(BaseModel):
    """A partial update: only the fields sent change; ``description: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    price: Price | None = None

    @field_validator("name", "price", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> ItemUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to update: give at least one of name, description, price")
        return self

    def changes(self) -> dict[str, Any]:
        """The columns to set: exactly the fields the caller sent."""
        return self.model_dump(include=self.model_fields_set)


class ItemRead(BaseModel):
    """An item as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    price: int
    created_at: datetime
    updated_at: datetime
    version: int

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class ItemPage(BaseModel):
    """One page of items; ``total`` is null when the count was skipped."""

    items: list[ItemRead]
    total: int | None
    skip: int
    limit: int


# -- the seed service's schemas (its compatibility routes) -------------------------
#
# The seed's own rules, where they hurt no one: pydantic's lax mode (2.0 is 2, "7" is 7),
# unknown fields ignored, names kept as sent.  Where the seed stored bad data or failed
# with a 500, these refuse with a 422 instead: blank names, `true` as a price, prices
# beyond the 32-bit column.  See the compat notes in dmitems.api.routers.compat.


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _not_a_bool(value: Any) -> Any:
    # Lax mode reads true as 1; the seed stored a price of 1 for it.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


SeedName = Annotated[
    str, StringConstraints(min_length=1, max_length=NAME_MAX), AfterValidator(_not_blank)
]
SeedPrice = Annotated[int, Field(ge=0, le=PRICE_MAX), BeforeValidator(_not_a_bool)]
_IGNORE_EXTRA = ConfigDict(extra="ignore")


class CompatItemCreate(BaseModel):
    """A new item, as the seed service took it: unknown fields are ignored."""

    model_config = _IGNORE_EXTRA

    name: SeedName = Field(description="商品名称, 1-255 characters, not blank")
    description: Description | None = Field(None, description="商品描述, at most 500 characters")
    price: SeedPrice = Field(description="商品价格, an integer from 0 to 2147483647")


class CompatItemRow(TypedDict):
    """CompatItemCreate's checks as a plain dict: a 1,000-item batch validates in a quarter
    of the time it takes to build and dump the models."""

    __pydantic_config__ = _IGNORE_EXTRA  # type: ignore[misc]

    name: SeedName
    description: NotRequired[Description | None]
    price: SeedPrice


class CompatItemUpdate(BaseModel):
    """An update as the seed took it: a field that is missing or null stays unchanged."""

    model_config = _IGNORE_EXTRA

    name: SeedName | None = None
    description: Description | None = None
    price: SeedPrice | None = None

    def changes(self) -> dict[str, Any]:
        """The columns to set: the fields sent with a value (none for ``{}``)."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class ItemResponse(BaseModel):
    """An item as the seed's routes return it (``version`` added)."""

    id: int
    name: str
    description: str | None
    price: int
    created_at: str | None
    updated_at: str | None
    version: int


ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_errors(error: ValidationError) -> list[tuple[str, str]]:
    """(field path, reason) for each problem, in pydantic's order."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"]) or "item"
        message = detail["msg"].removeprefix("Value error, ")
        problems.append((location, message))
    return problems


def parse(model: type[ModelT], data: Any, what: str = "item") -> ModelT:
    """Validate ``data`` as ``model`` or raise :class:`ValidationFailed` with one-line text."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = describe_errors(error)
        summary = "; ".join(f"{where}: {why}" for where, why in problems)
        raise ValidationFailed(f"invalid {what}: {summary}", problems) from None
