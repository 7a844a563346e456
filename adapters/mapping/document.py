"""Reading a mapping file (TOML or YAML) with the line of every key, so that
each load-time error can name the file, the line and the field."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.errors import MappingError

Key = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed mapping file and where each of its keys is written."""

    path: Path
    text: str
    data: dict[str, Any]
    lines: dict[Key, int] = field(default_factory=dict)

    def line(self, key: Key) -> int | None:
        """Line of `key`, or of its nearest written ancestor (inline tables share their key's line)."""
        for n in range(len(key), 0, -1):
            if key[:n] in self.lines:
                return self.lines[key[:n]]
        return None

    def error(self, key: Key, message: str) -> MappingError:
        return MappingError(message, file=self.path, line=self.line(key), field=dotted(key))


def dotted(key: Key) -> str:
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            text = text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else f'"{text}"'
            out += f".{text}" if out else text
    return out


def read_document(path: str | Path) -> Document:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read mapping file: {exc}", file=path) from None
    if path.suffix.lower() == ".toml":
        return _toml(path, text)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml(path, text)
    raise MappingError("a mapping file must end in .toml, .yaml or .yml", file=path)


# --- TOML: tomllib has no positions, so keys are located by scanning the text ---

_SEGMENT = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")
_TOML_ERROR_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def _toml(path: Path, text: str) -> Document:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_ERROR_LINE.search(str(exc))
        raise MappingError(f"not valid TOML: {_TOML_ERROR_LINE.sub('', str(exc)).strip()}", file=path,
                           line=int(m.group(1)) if m else None) from None
    return Document(path, text, data, _toml_lines(text))


def _keys(text: str) -> tuple[list[str], str] | None:
    """Parse a dotted key at the start of `text`; returns (segments, rest) or None."""
    parts, pos = [], 0
    while True:
        m = _SEGMENT.match(text, pos)
        if not m or m.end() == pos:
            return None
        bare, dq, sq = m.groups()
        parts.append(bare if bare is not None else dq.encode().decode("unicode_escape") if dq is not None else sq)
        pos = m.end()
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        return parts, text[pos:]


def _toml_lines(text: str) -> dict[Key, int]:
    lines: dict[Key, int] = {}
    arrays: dict[tuple, int] = {}
    table: Key = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if in_multiline:
            in_multiline = (stripped.count('"""') + stripped.count("'''")) % 2 == 0
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parsed = _keys(stripped[2:])
            if parsed and parsed[1].lstrip().startswith("]]"):
                base = _resolve(tuple(parsed[0][:-1]), arrays) + (parsed[0][-1],)
                arrays[base] = arrays.get(base, 0) + 1
                table = base + (arrays[base] - 1,)
                lines.setdefault(base, number)
                lines[table] = number
            continue
        if stripped.startswith("["):
            parsed = _keys(stripped[1:])
            if parsed and parsed[1].lstrip().startswith("]"):
                table = _resolve(tuple(parsed[0]), arrays)
                lines.setdefault(table, number)
            continue
        parsed = _keys(stripped)
        if parsed and parsed[1].startswith("="):
            key = table
            for part in parsed[0]:
                key = key + (part,)
                lines.setdefault(key, number)
            value = parsed[1][1:]
            if (value.count('"""') + value.count("'''")) % 2 == 1:
                in_multiline = True
    return lines


def _resolve(path: tuple, arrays: dict[tuple, int]) -> Key:
    """Insert the current index after every array-of-tables prefix of a header path."""
    out: Key = ()
    for part in path:
        out = out + (part,)
        if out in arrays:
            out = out + (arrays[out] - 1,)
    return out


# --- YAML: node marks give the lines ---

def _yaml(path: Path, text: str) -> Document:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MappingError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", file=path,
                           line=mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError("a mapping file must hold a mapping at its top level", file=path, line=1)
    lines: dict[Key, int] = {}
    _yaml_walk(node, (), lines)
    return Document(path, text, data, lines)


def _yaml_walk(node: yaml.Node | None, key: Key, lines: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            child = key + (str(k.value),)
            lines.setdefault(child, k.start_mark.line + 1)
            _yaml_walk(v, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = key + (i,)
            lines.setdefault(child, item.start_mark.line + 1)
            _yaml_walk(item, child, lines)
