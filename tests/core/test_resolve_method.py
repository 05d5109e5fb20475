"""`resolve_method`: a name or a method config object -> (method name, config overrides)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.core.method import METHODS, MethodConfig, resolve_method
from forget.errors import ForgetError, InvalidInputError, UnknownMethodError
from forget.methods.npo import NPOConfig
from forget.methods.retrain import RetrainConfig


def test_a_name_has_no_overrides():
    assert resolve_method("npo") == ("npo", {})
    assert resolve_method("auto") == ("auto", {})


def test_a_default_config_is_its_method_without_overrides():
    assert resolve_method(NPOConfig()) == ("npo", {})
    assert resolve_method(RetrainConfig()) == ("retrain", {})


def test_changed_fields_are_the_overrides():
    name, overrides = resolve_method(NPOConfig(max_steps=7, beta=0.5))
    assert name == "npo" and overrides == {"max_steps": 7, "beta": 0.5}


@pytest.mark.parametrize(("value", "cls", "words"), [
    ("npoo", UnknownMethodError, "Did you mean 'npo'"),
    (MethodConfig(), UnknownMethodError, "no registered method takes a MethodConfig"),
    (3, InvalidInputError, "got a int"),
    (None, InvalidInputError, "got a NoneType"),
])
def test_bad_values_are_refused(value, cls, words):
    with pytest.raises(cls, match=words) as info:
        resolve_method(value)
    assert isinstance(info.value, ForgetError)


def test_a_config_class_shared_by_two_methods_is_ambiguous(monkeypatch):
    monkeypatch.setitem(METHODS._items, "npo_twin", METHODS.get("npo"))
    with pytest.raises(InvalidInputError, match="several methods"):
        resolve_method(NPOConfig())


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(METHODS.names()), steps=st.integers(1, 10_000),
       seed=st.integers(0, 2**31 - 1))
def test_every_method_round_trips(name, steps, seed):
    cls = METHODS.get(name).config_class
    config = dataclasses.replace(cls(), max_steps=steps, seed=seed)
    got, overrides = resolve_method(config)
    assert got == name
    assert cls.from_dict(cls().to_dict() | overrides) == config
    assert resolve_method(cls.from_dict(cls().to_dict() | overrides)) == (name, overrides)
