"""Typed YAML: a YAML mapping loaded into nested dataclasses, every key checked against the schema.

Each field's type hint is the schema (int, float, str, bool, lists of them, `X | None`, nested
dataclasses). An unknown key (with a "did you mean" suggestion), a wrong type or a missing value is
a one-line UserError naming the file and the dotted key. Fields with `metadata={"internal": True}`
are not keys. `KEY.PATH=VALUE` overrides (`--set`) are checked the same way. Used for `sr-train fit`
recipes. Degradation pipeline files are read with the same reader (`yaml_mapping`), but their values (ranges
with bounds, weight mappings, a list of different ops chosen by `op:`) are checked key by key in
srdata.degradations.spec, which names the step as well as the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from srdata.errors import UserError


def read_yaml_mapping(path: Path, what: str, example: str, keys_hint: str) -> dict:
    """A YAML file that must hold a mapping (an empty file is {}); UserError naming the file (and line)
    otherwise. `what` names the kind of file ("recipe"), `example` an existing one, `keys_hint` its keys."""
    return yaml_mapping(read_file_bytes(path, what, example), path, what, keys_hint)


def read_file_bytes(path: Path, what: str, example: str) -> bytes:
    """The bytes of the `what` file `path`; UserError naming it when it is missing or unreadable."""
    if not path.is_file():
        raise UserError(f"{path}: no such {what} file: give a YAML {what}, e.g. {example}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} file ({exc.strerror or exc})") from None


def yaml_mapping(data: bytes, path: Path, what: str, keys_hint: str) -> dict:
    """`read_yaml_mapping` of bytes already read from `path`."""
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}): fix the syntax") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file: give a YAML {what}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a {what} is a YAML mapping of keys ({keys_hint}), not a {type(raw).__name__}")
    return raw


def parse_override(item: str) -> tuple[str, Any]:
    """`key.path=value` -> (key path, YAML-parsed value)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {item!r}: write it as KEY.PATH=VALUE, e.g. --set train.iters=1000")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def set_path(raw: dict, key: str, value, source: str, schema: type) -> None:
    """Set `raw[a][b][c] = value` for key "a.b.c", checking each part against the dataclass `schema`."""
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts):
        names = _field_types(schema)
        if part not in names:
            prefix = ".".join(parts[:depth])
            raise UserError(f"{source} {key}: unknown key {'.'.join(parts[:depth + 1])!r}"
                            f"{_did_you_mean(part, names, prefix)}")
        if depth == len(parts) - 1:
            node[part] = value
            return
        inner = _dataclass_of(names[part])
        if inner is None:
            raise UserError(f"{source} {key}: {'.'.join(parts[:depth + 1])!r} is a value, not a section")
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node, schema = node[part], inner


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _did_you_mean(name: str, choices, prefix: str) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    full = (prefix + "." if prefix else "")
    if close:
        return f" (did you mean {full + close[0]!r}?)"
    return f"; valid keys{' under ' + prefix if prefix else ''}: {', '.join(choices)}"


def _dataclass_of(hint) -> type | None:
    """The dataclass inside a hint like `Folders | None`, or None for plain values."""
    for candidate in _union_members(hint):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _union_members(hint) -> tuple:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def from_dict(cls, raw, source: str, prefix: str = ""):
    """Build dataclass `cls` from a mapping, naming the file and key of any unknown key or bad type."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise UserError(f"{source}: {where} must be a mapping of keys, got {raw!r}")
    names = _field_types(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise UserError(f"{source}: unknown key {prefix + str(key)!r}{_did_you_mean(str(key), names, prefix.rstrip('.'))}")
        kwargs[key] = _convert(names[key], value, source, prefix + key)
    return cls(**kwargs)


def _convert(hint, value, source: str, key: str):
    members = _union_members(hint)
    if value is None:
        if type(None) in members:
            return None
        raise UserError(f"{source}: {key} needs a value ({_type_name(hint)}), got nothing")
    inner = _dataclass_of(hint)
    if inner is not None:
        return from_dict(inner, value, source, key + ".")
    for member in members:
        if member is type(None):
            continue
        ok, converted = _try_scalar(member, value, source, key)
        if ok:
            return converted
    raise UserError(f"{source}: {key} must be {_type_name(hint)}, got {value!r}: fix the value")


def _try_scalar(member, value, source, key) -> tuple[bool, Any]:
    if typing.get_origin(member) is list:
        (item_type,) = typing.get_args(member)
        if not isinstance(value, list):
            return False, None
        return True, [_convert(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if member is bool:
        return (True, value) if isinstance(value, bool) else (False, None)
    if member is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, None
    if member is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
        elif isinstance(value, str):  # YAML 1.1 reads `1e-7` (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                return False, None
        if number is None:
            return False, None
        if not math.isfinite(number):
            raise UserError(f"{source}: {key} must be a finite number, got {value!r}: fix the value")
        return True, number
    if member is str:
        return (True, value) if isinstance(value, str) else (False, None)
    return False, None


def _type_name(hint) -> str:
    names = []
    for member in _union_members(hint):
        if member is type(None):
            continue
        if typing.get_origin(member) is list:
            names.append(f"a list of {_type_name(typing.get_args(member)[0])}s")
        else:
            names.append({int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
                member, getattr(member, "__name__", str(member))))
    return " or ".join(names)
