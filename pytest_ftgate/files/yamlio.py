"""YAML loading that remembers where each value came from, so errors can name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, SuiteError

Location = tuple[Any, ...]
MAX_YAML_BYTES = 16 * 2**20


def load_yaml_with_lines(path: Path, error: type[ConfigError] = SuiteError) -> tuple[Any, dict[Location, int]]:
    """Parse a YAML file safely; return the data and a map from key path to 1-based line.

    `error` is the ConfigError subclass to raise for this kind of file (suite, pricing, recipe)."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"the file is {size / 2**20:,.1f} MiB, over the {MAX_YAML_BYTES // 2**20} MiB a YAML file may be "
                        "here: put the cases in a JSONL file beside it (`cases: cases.jsonl`)", path)
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror}", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): is this a binary file? Save it as UTF-8", path, line) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise error(f"invalid YAML: {problem}. Check the indentation and quoting there.", path, line) from None
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        line = text.count("\n", 0, getattr(exc, "position", 0) or 0) + 1 if getattr(exc, "position", None) is not None else None
        raise error(f"invalid YAML: {getattr(exc, 'reason', None) or exc}. Remove the character or fix the file there.",
                    path, line) from None
    except RecursionError:
        raise error("invalid YAML: nested too deeply to read", path) from None
    lines: dict[Location, int] = {}
    if node is not None:
        duplicate = _index(node, (), lines, set())
        if duplicate is not None:
            key, line, first = duplicate
            raise error(f"duplicate key {key!r} (first at line {first}): YAML would keep only the last one silently; "
                        "remove one of them", path, line)
    return data, lines


def _index(node: yaml.Node, where: Location, lines: dict[Location, int], seen: set[int]) -> tuple[str, int, int] | None:
    """Record the line of every key path; return (key, line, first line) of a duplicate key, if any.

    A node reached again through an alias is not walked again: aliases of aliases would otherwise
    take exponential time (the "billion laughs" file)."""
    lines[where] = node.start_mark.line + 1
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)[:40]
            line = key_node.start_mark.line + 1
            if key in first and key != "<<":
                return str(key), line, first[key]
            first[key] = line
            found = _index(value_node, (*where, key), lines, seen)
            lines[(*where, key)] = line
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _index(item, (*where, i), lines, seen)
            if found:
                return found
    return None


def line_of(lines: dict[Location, int], *where: Any) -> int | None:
    """The line of the deepest known prefix of `where` (keys compared as YAML wrote them: 1 and "1" alike)."""
    for end in range(len(where), -1, -1):
        prefix = where[:end]
        for candidate in (prefix, tuple(k if isinstance(k, int) and not isinstance(k, bool) and k < 0 else
                                         (str(k) if not isinstance(k, str) else k) for k in prefix)):
            if candidate in lines:
                return lines[candidate]
    return None
