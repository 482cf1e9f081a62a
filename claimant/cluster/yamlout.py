"""A tiny block-style YAML emitter (this layer may not depend on PyYAML).

Scalars are written as JSON, which every YAML parser (SnakeYAML in Cassandra,
compose's Go parser) reads back unchanged; plain words stay unquoted where
that is unambiguous so the files stay readable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Words YAML 1.1 (SnakeYAML) would turn into booleans or null if unquoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_PLAIN = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_./:-]*$")


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and ": " not in text:
        return text
    return json.dumps(text)


def dump(data: Mapping[str, Any], indent: int = 2) -> str:
    lines: list[str] = []
    _emit_mapping(data, 0, indent, lines)
    return "\n".join(lines) + "\n"


def _emit_mapping(data: Mapping[str, Any], level: int, indent: int, out: list[str]) -> None:
    pad = " " * level
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.append(f"{pad}{scalar(key)}:")
            _emit_mapping(value, level + indent, indent, out)
        elif _is_seq(value) and value:
            out.append(f"{pad}{scalar(key)}:")
            _emit_sequence(value, level + indent, indent, out)
        else:
            out.append(f"{pad}{scalar(key)}: {_empty_or_scalar(value)}")


def _emit_sequence(data: Sequence[Any], level: int, indent: int, out: list[str]) -> None:
    pad = " " * level
    for item in data:
        if isinstance(item, Mapping) and item:
            sub: list[str] = []
            _emit_mapping(item, level + 2, indent, sub)
            # The first key goes on the dash line: "- key: value".
            out.append(f"{pad}- {sub[0].lstrip()}")
            out.extend(sub[1:])
        elif _is_seq(item) and item:
            # A nested sequence in flow style: JSON is valid YAML.
            out.append(f"{pad}- {json.dumps(item)}")
        else:
            out.append(f"{pad}- {_empty_or_scalar(item)}")


def _empty_or_scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if _is_seq(value):
        return "[]"
    return scalar(value)


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
