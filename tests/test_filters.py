"""haltgate.filters: one compiled matcher per filter spec, one rule for broken predicates."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from haltgate import HaltgateError
from haltgate.filters import CompiledFilter, compile_filter, normalize_filter


class InsufficientFunds(Exception):
    pass


def broken(value: object) -> bool:
    raise AttributeError("predicate bug")


def failure_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.message == "exception_filter_failed"]


@pytest.mark.parametrize(
    "spec",
    [InsufficientFunds, (InsufficientFunds,), [InsufficientFunds], {InsufficientFunds}],
)
def test_types_in_any_collection_compile_to_an_isinstance_check(spec: Any) -> None:
    compiled = compile_filter(spec, "ignore", match_counts=False)
    assert compiled is not None
    assert compiled.predicate is None
    assert compiled.types == (InsufficientFunds,)
    assert compiled.matches(InsufficientFunds())
    assert not compiled.matches(ValueError())
    assert not compiled.matches("insufficient funds")  # a message is not an instance


def test_a_predicate_is_asked_and_its_answer_made_a_bool() -> None:
    compiled = compile_filter(lambda e: "funds" in str(e), "ignore", match_counts=False)
    assert compiled is not None
    assert compiled.matches(ValueError("no funds")) is True
    assert compiled.matches(ValueError("timeout")) is False


def test_none_and_an_allowed_empty_collection_select_nothing() -> None:
    assert compile_filter(None, "ignore", match_counts=False) is None
    assert compile_filter((), "ignore_exceptions", match_counts=False, allow_empty=True) is None
    assert normalize_filter([], "record_exceptions", allow_empty=True) == ()


@pytest.mark.parametrize("bad", [42, "ValueError", (ValueError, "x"), [int], (), object()])
def test_bad_specs_are_refused_naming_the_parameter_and_the_value(bad: Any) -> None:
    with pytest.raises(HaltgateError) as info:
        compile_filter(bad, "ignore", match_counts=False)
    assert isinstance(info.value, TypeError)
    assert info.value.parameter == "ignore"  # type: ignore[attr-defined]
    assert info.value.value == bad  # type: ignore[attr-defined]
    assert "ignore" in str(info.value)


@pytest.mark.parametrize(("match_counts", "answer"), [(False, False), (True, True)])
def test_a_raising_predicate_answers_so_that_the_error_counts_and_is_logged_once(
    caplog: pytest.LogCaptureFixture, match_counts: bool, answer: bool
) -> None:
    compiled = compile_filter(broken, "some_filter", match_counts=match_counts)
    assert compiled is not None
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        assert compiled.matches(ValueError("x"), "api") is answer
    (record,) = failure_records(caplog)
    assert record.name == "haltgate.filters"
    assert record.parameter == "some_filter"  # type: ignore[attr-defined]
    assert record.breaker == "api"  # type: ignore[attr-defined]
    assert record.exc_info is not None and record.exc_info[0] is AttributeError


def test_a_predicate_answer_without_a_truth_value_counts_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoTruth:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous")

    compiled = CompiledFilter("ignore", match_counts=False, predicate=lambda e: NoTruth())
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        assert compiled.matches(ValueError()) is False
    assert len(failure_records(caplog)) == 1


def test_the_log_entry_survives_a_value_whose_repr_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BadRepr(Exception):
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    compiled = compile_filter(broken, "ignore", match_counts=False)
    assert compiled is not None
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        assert compiled.matches(BadRepr()) is False
    assert len(failure_records(caplog)) == 1
