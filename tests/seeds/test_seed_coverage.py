"""Guards over the seed documents themselves.

1. Every line of every Python example in both seeds appears in the seed tests (white space
   folded; only import lines and docstrings may differ), so no example goes untested.
2. The README's two config dataclasses are read from the seed text and every field and
   default is compared with haltgate's own dataclass.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest
from _seeds import seed_text

import haltgate

TESTS = Path(__file__).resolve().parent


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _blocks(prefix: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", seed_text(prefix), re.S)


# Blocks that are not usage examples, with the reason.
NOT_EXAMPLES = {
    (
        "001",
        0,
    ): "installation by sys.path.insert of the original component: haltgate is pip-installed",
    ("001", 3): "the CircuitBreakerConfig declaration: checked field by field below",
    ("001", 4): "the TradingBreakerConfig declaration: checked field by field below",
}


def _allowed_difference(line: str) -> bool:
    stripped = line.strip()
    return (
        stripped.startswith(("from circuit_breakers import", "from rustybt", '"""'))
        or "\\n" in stripped  # an f-string whose escape is written differently in a test
    )


@pytest.mark.parametrize("prefix", ["000", "001"])
def test_every_seed_example_is_exercised(prefix: str) -> None:
    corpus = _norm("\n".join(p.read_text(encoding="utf-8") for p in TESTS.parent.rglob("*.py")))
    missing = []
    for index, block in enumerate(_blocks(prefix)):
        if (prefix, index) in NOT_EXAMPLES:
            continue
        for line in block.splitlines():
            if not line.strip() or line.strip().startswith("#") or _allowed_difference(line):
                continue
            if _norm(line) not in corpus:
                missing.append((index, line))
    assert not missing, f"seed {prefix} lines not exercised by any test: {missing}"


def _declared_fields(prefix: str, index: int) -> dict[str, object]:
    fields: dict[str, object] = {}
    for line in _blocks(prefix)[index].splitlines():
        match = re.match(r"\s+(\w+): [\w\[\]]+ = (.+?)\s*(#.*)?$", line)
        if match:
            fields[match.group(1)] = eval(match.group(2), {"Decimal": Decimal})
    return fields


@pytest.mark.parametrize(
    ("index", "cls"),
    [(3, haltgate.CircuitBreakerConfig), (4, haltgate.TradingBreakerConfig)],
)
def test_config_dataclasses_have_every_seed_field_and_default(index: int, cls: type) -> None:
    declared = _declared_fields("001", index)
    assert len(declared) >= 10
    ours = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, default in declared.items():
        assert name in ours, f"{cls.__name__} lacks the README field {name}"
        assert ours[name] == default, (cls.__name__, name, ours[name], default)
        assert type(ours[name]) is type(default) or isinstance(ours[name], Decimal)
