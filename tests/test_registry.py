from __future__ import annotations

import pytest

from forget.errors import (
    DuplicateNameError,
    ForgetError,
    InvalidInputError,
    UnknownMethodError,
    UnknownNameError,
)
from forget.registry import Registry


class Base:
    pass


class Alpha(Base):
    pass


class Beta(Base):
    pass


@pytest.fixture
def reg() -> Registry:
    r: Registry[type[Base]] = Registry("widget", Base, error=UnknownMethodError)
    r.register("gradient_ascent", Alpha)
    r.register("grad_diff", Beta)
    return r


def test_lookup_and_listing(reg):
    assert reg.get("grad_diff") is Beta
    assert reg.names() == ["grad_diff", "gradient_ascent"]
    assert "gradient_ascent" in reg and len(reg) == 2


@pytest.mark.parametrize("typo, suggested", [
    ("gradient_acent", "gradient_ascent"),
    ("grad-diff", "grad_diff"),
])
def test_unknown_name_suggests_near_misses(reg, typo, suggested):
    with pytest.raises(UnknownMethodError) as e:
        reg.get(typo)
    assert suggested in str(e.value) and "Did you mean" in str(e.value)
    assert isinstance(e.value, KeyError) and isinstance(e.value, ForgetError)


def test_unknown_name_without_near_miss_lists_registered(reg):
    with pytest.raises(UnknownNameError) as e:
        reg.get("zzz")
    assert "Did you mean" not in str(e.value) and "grad_diff" in str(e.value)


def test_duplicates_and_wrong_base_are_rejected(reg):
    with pytest.raises(DuplicateNameError):
        reg.register("grad_diff", Alpha)

    class Other:
        pass

    with pytest.raises(InvalidInputError):
        reg.register("other", Other)
    with pytest.raises(InvalidInputError):
        reg.register(" spaced ", Alpha)
    assert reg.names() == ["grad_diff", "gradient_ascent"]
