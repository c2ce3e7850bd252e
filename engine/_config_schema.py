"""Schema machinery behind :mod:`engine.config`: declare, check and describe settings.

Design note
-----------
Each setting is declared once, as a dataclass field made by :func:`setting`, which
carries its default, its documentation, its unit and its :class:`Rule` (range,
choices or a check function).  Everything else is derived from that declaration:

* :func:`build` turns a parsed TOML/JSON table into a section and *collects* every
  problem (unknown key, wrong type, out of range, bad choice, cross-field rule) as a
  :class:`Problem`, so a user sees all mistakes of a file at once;
* :class:`Section` runs the same coercion and checks when a section is constructed in
  code (``SupervisorConfig(...)``, ``dataclasses.replace``), so no unchecked value
  exists anywhere;
* :func:`render_toml` and :func:`render_markdown` write the commented default file
  and the reference page from the same metadata, so errors, ``docs/CONFIG.md`` and
  ``swarm.toml`` cannot disagree.

The module has three parts: declaring and checking (:class:`Section`, :func:`build`),
reading files (:func:`read_table`) and rendering.

Type handling is deliberately small: ``bool``, ``int``, ``float``, ``str``,
``tuple[str, ...]``, ``Mapping[str, X]``, ``Any`` (a free-form TOML value) and nested
sections.  A ``bool`` is never an ``int``; an ``int`` is accepted for a ``float``.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import inspect
import json
import keyword
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from engine.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_K = TypeVar("_K")
_V = TypeVar("_V")
_S = TypeVar("_S", bound="Section")

MAX_NESTING = 32
"""Deepest nesting accepted inside free-form tables (``options``)."""


class FrozenDict(Mapping[_K, _V]):
    """An immutable, hashable mapping: the value of every table-valued setting."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[_K, _V] | None = None) -> None:
        self._data: dict[_K, _V] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Never pickle the cached hash: string hashes differ between processes.
        return (FrozenDict, (self._data,))


@dataclass(frozen=True)
class Rule:
    """What values a setting allows, declared next to the field.

    Attributes:
        lo: smallest allowed number (inclusive), or ``None``.
        hi: largest allowed number (inclusive), or ``None``.
        choices: the only allowed strings, or empty.
        check: extra check run after the range; returns an error message or ``None``.
        allowed: words describing what ``check`` allows, for the docs.
    """

    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    allowed: str = ""


class Problem(NamedTuple):
    """One thing wrong with a configuration: dotted key path and message."""

    key: str
    message: str


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
    check: Callable[[Any], str | None] | None = None,
    allowed: str = "",
    example: Any = None,
) -> Any:
    """Declare a setting: a dataclass field with its doc, unit and rule in metadata."""
    meta = {
        "doc": doc,
        "unit": unit,
        "rule": Rule(lo, hi, tuple(choices), check, allowed),
        "example": example,
    }
    return field(default=default, metadata=meta)


def section(cls: type[Section], doc: str) -> Any:
    """Declare a nested table whose default is ``cls()``."""
    return field(default_factory=cls, metadata={"doc": doc, "unit": "", "rule": Rule()})


class Section:
    """Base of every configuration section: a frozen dataclass that checks itself.

    Construction coerces each value (``int`` to ``float``, list to tuple, dict to
    :class:`FrozenDict` or to a nested section) and then runs :meth:`problems`;
    the first problem is raised as :class:`~engine.errors.ConfigError`.
    """

    def __post_init__(self) -> None:
        found: list[Problem] = []
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = coerce(hints[f.name], getattr(self, f.name), f.name, found)
            object.__setattr__(self, f.name, value)
        if not found:
            found = list(self.problems())
        if found:
            raise to_error(found, None)

    def problems(self) -> Iterator[Problem]:
        """Yield rule violations of every field, then of the cross-field checks."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            message = check_rule(f, getattr(self, f.name))
            if message:
                yield Problem(f.name, message)
        yield from self.cross_checks()

    def cross_checks(self) -> Iterator[Problem]:
        """Yield problems that involve more than one field (none by default)."""
        return iter(())


_HINTS: dict[type, dict[str, Any]] = {}


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a section class (cached)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def join(prefix: str, key: str) -> str:
    """Dotted key path: ``join("supervisor", "strategy")``."""
    return f"{prefix}.{key}" if prefix else key


def show(value: Any) -> str:
    """A value as a user would write it in TOML, shortened for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.set_int_max_str_digits)
        return "a very large integer"
    return text if len(text) <= 60 else text[:57] + "..."


def kind(value: Any) -> str:
    """The TOML word for the type of ``value``."""
    if isinstance(value, bool):
        return "boolean"
    for tp, word in ((int, "integer"), (float, "float"), (str, "string")):
        if isinstance(value, tp):
            return word
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "table"
    return type(value).__name__


def num(x: float) -> str:
    """A bound written briefly: ``100`` rather than ``100.0``, ``0.05`` as is."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _wrong(found: list[Problem], key: str, expected: str, value: Any) -> None:
    found.append(Problem(key, f"expected {expected}, got {kind(value)} {show(value)}"))


def coerce(tp: Any, value: Any, key: str, found: list[Problem]) -> Any:
    """Check ``value`` against type ``tp``; return it normalised, or record a problem."""
    if isinstance(tp, type) and issubclass(tp, Section):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return build(tp, value, key, found)
        return _wrong(found, key, "a table", value)
    if tp is Any:
        return freeze(value, key, found)
    if tp is bool:
        return value if isinstance(value, bool) else _wrong(found, key, "true or false", value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok else _wrong(found, key, "an integer", value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _wrong(found, key, "a number", value)
        try:
            return float(value)
        except OverflowError:
            found.append(Problem(key, f"{show(value)} is too large"))
            return None
    if tp is str:
        return value if isinstance(value, str) else _wrong(found, key, "a string", value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return _wrong(found, key, f"an array of {type_word(args[0])}s", value)
        return tuple(coerce(args[0], v, f"{key}[{i}]", found) for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            return _wrong(found, key, "a table", value)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                found.append(Problem(key, f"table keys must be strings, got {show(k)}"))
                continue
            out[k] = coerce(args[1], v, join(key, k), found)
        return FrozenDict(out)
    raise TypeError(f"unsupported setting type {tp!r}")  # a schema bug, not a user error


_SCALARS = (str, int, float, bool, datetime.date, datetime.time)


def freeze(value: Any, key: str, found: list[Problem], depth: int = 0) -> Any:
    """Check a free-form TOML value and make it immutable (tables and arrays)."""
    if depth > MAX_NESTING:
        found.append(Problem(key, f"nested more than {MAX_NESTING} levels deep"))
        return None
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v, f"{key}[{i}]", found, depth + 1) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                found.append(Problem(key, f"table keys must be strings, got {show(k)}"))
            else:
                out[k] = freeze(v, join(key, k), found, depth + 1)
        return FrozenDict(out)
    found.append(
        Problem(key, f"expected a TOML value (string, number, boolean, date, array or "
                     f"table), got {kind(value)} {show(value)}")
    )
    return None


def suggest(name: str, known: typing.Iterable[str], what: str = "keys") -> str:
    """``"did you mean 'x'?"`` for the closest known name, else the list of them all."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}: {', '.join(names)}"


def unknown_key(name: str, known: typing.Iterable[str]) -> str:
    """Message for an unknown key, suggesting the closest known one."""
    return f"unknown key {name!r}; {suggest(name, known)}"


def build(cls: type[_S], data: Mapping[Any, Any], key: str, found: list[Problem]) -> _S | None:
    """Build section ``cls`` from a parsed table, appending every problem to ``found``.

    Returns ``None`` when the table has problems (they are in ``found``).
    """
    start = len(found)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = type_hints(cls)
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if not isinstance(name, str):
            found.append(Problem(key, f"table keys must be strings, got {show(name)}"))
        elif name not in fields:
            found.append(Problem(join(key, name), unknown_key(name, fields)))
        else:
            before = len(found)
            value = coerce(hints[name], raw, join(key, name), found)
            message = check_rule(fields[name], value) if len(found) == before else None
            if message:
                found.append(Problem(join(key, name), message))
            values[name] = value
    for name, f in fields.items():
        if name in values:
            continue
        if f.default is not MISSING:
            values[name] = f.default
        elif f.default_factory is not MISSING:
            values[name] = f.default_factory()
        else:
            found.append(Problem(join(key, name), "required key is missing"))
    if len(found) > start:
        return None
    obj = cls.__new__(cls)  # values are already checked: skip __post_init__'s second pass
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    found.extend(Problem(join(key, p.key), p.message) for p in obj.cross_checks())
    return obj if len(found) == start else None


def check_rule(f: dataclasses.Field[Any], value: Any) -> str | None:
    """Check one coerced value against its field's rule; return a message or ``None``."""
    rule: Rule = f.metadata.get("rule", Rule())
    if rule.choices and value not in rule.choices:
        return f"{show(value)} is not allowed; choose one of {', '.join(rule.choices)}"
    if (rule.lo is not None or rule.hi is not None) and isinstance(value, (int, float)):
        lo = rule.lo if rule.lo is not None else float("-inf")
        hi = rule.hi if rule.hi is not None else float("inf")
        if not lo <= value <= hi:  # also catches nan
            return f"{show(value)} is out of range; allowed: {describe_range(f)}"
    return rule.check(value) if rule.check else None


def describe_range(f: dataclasses.Field[Any]) -> str:
    """``"0.05 .. 3600 s"`` for a field with bounds (and unit)."""
    rule: Rule = f.metadata["rule"]
    lo = num(rule.lo) if rule.lo is not None else "-inf"
    hi = num(rule.hi) if rule.hi is not None else "inf"
    unit = f.metadata.get("unit", "")
    return f"{lo} .. {hi}" + (f" {unit}" if unit else "")


def describe_allowed(f: dataclasses.Field[Any]) -> str:
    """Everything a field allows, in words, for docs and comments."""
    rule: Rule = f.metadata["rule"]
    parts = []
    if rule.choices:
        parts.append(" | ".join(rule.choices))
    if rule.lo is not None or rule.hi is not None:
        parts.append(describe_range(f))
    elif f.metadata.get("unit"):
        parts.append(f.metadata["unit"])
    if rule.allowed:
        parts.append(rule.allowed)
    return "; ".join(parts)


def to_error(found: list[Problem], path: str | None) -> ConfigError:
    """One :class:`ConfigError` for the first problem, listing any others after it."""
    first = found[0]
    message = first.message
    if len(found) > 1:
        where = path or "<config>"
        rest = "\n".join(f"  {where}: {p.key}: {p.message}" for p in found[1:])
        more = len(found) - 1
        message += f"\n... and {more} more problem{'s' if more > 1 else ''}:\n{rest}"
    return ConfigError(message, path=path, key=first.key or None)


def to_plain(value: Any) -> Any:
    """Sections and frozen tables back to dicts and lists (TOML/JSON-ready)."""
    if isinstance(value, Section):
        return {f.name: to_plain(getattr(value, f.name))
                for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


# --- checks shared by several settings ----------------------------------------------


def check_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        return None
    return f"{show(value)} is not a valid name; use 1..40 characters from a-z A-Z 0-9 _ -"


def check_power_of_two(value: int) -> str | None:
    if value & (value - 1) == 0:
        return None
    return f"{value} is not a power of two; allowed: a power of two such as 262144"


def check_host(value: str) -> str | None:
    if value and len(value) <= 253 and not any(c.isspace() for c in value):
        return None
    return f"{show(value)} is not a host name or address"


def check_path(value: str) -> str | None:
    return f"{show(value)} is not a valid path" if "\0" in value else None


def dotted(text: str) -> bool:
    """Whether ``text`` is a dotted Python name such as ``pkg.mod``."""
    parts = text.split(".")
    return all(p.isidentifier() and not keyword.iskeyword(p) for p in parts)


def check_import_path(value: str) -> str | None:
    module, colon, qualname = value.partition(":")
    if colon and dotted(module) and dotted(qualname):
        return None
    return f"{show(value)} is not an import path; write 'package.module:ClassName'"


def check_modules(value: tuple[str, ...]) -> str | None:
    for item in value:
        if not dotted(item):
            return f"{show(item)} is not a module name; write e.g. 'mypkg.agents'"
    return None


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, table by table (neither is modified)."""
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(out.get(key), dict) and isinstance(value, Mapping)
        out[key] = merge(out[key], value) if both else value
    return out


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any],
                    source: str) -> dict[str, Any]:
    """Set dotted keys (``"supervisor.strategy"``) in plain ``data``, merging tables.

    ``data`` is changed in place and returned.

    Raises:
        ConfigError: a dotted key goes through something that is not a table.
    """
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = data
        for depth, part in enumerate(parents):
            if not isinstance(node.get(part), dict):
                raise ConfigError("is not a table", path=source,
                                  key=".".join(parents[: depth + 1]))
            node = node[part]
        value = to_plain(value)
        both = isinstance(node.get(last), dict) and isinstance(value, dict)
        node[last] = merge(node[last], value) if both else value
    return data


# --- reading files ------------------------------------------------------------------


def read_table(where: str) -> dict[str, Any]:
    """Read and parse a configuration file: JSON if it ends in ``.json``, else TOML.

    Raises:
        ConfigError: unreadable (with the OS reason) or a syntax error (with ``line``).
    """
    try:
        raw = Path(where).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=where) from exc
    if where.lower().endswith(".json"):
        return _parse_json(raw, where)
    return _parse_toml(raw, where)


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _decode(raw: bytes, where: str, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (bad byte at offset {exc.start})", path=where,
                          line=raw.count(b"\n", 0, exc.start) + 1) from exc


def _parse_toml(raw: bytes, where: str) -> dict[str, Any]:
    text = _decode(raw, where, "utf-8")
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or int() refusing a huge literal
        message = str(exc.args[0] if exc.args else exc)
        at = _TOML_AT.search(message)
        line = int(at[1]) if at else (text.count("\n") + 1 if "end of document" in message
                                      else None)
        where_in_line = f" (column {at[2]})" if at else ""
        bare = _TOML_AT.sub("", message).replace(" (at end of document)", "")
        raise ConfigError(f"TOML syntax error: {bare}{where_in_line}", path=where,
                          line=line) from exc
    except RecursionError as exc:
        raise ConfigError("TOML syntax error: nested too deeply", path=where) from exc


def _parse_json(raw: bytes, where: str) -> dict[str, Any]:
    text = _decode(raw, where, "utf-8-sig")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"duplicate key {key!r} in a JSON object", path=where)
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"JSON syntax error: {exc.msg} (column {exc.colno})", path=where,
                          line=exc.lineno) from exc
    except ValueError as exc:  # int() refusing a huge literal
        raise ConfigError(f"JSON error: {exc}", path=where) from exc
    except RecursionError as exc:
        raise ConfigError("JSON syntax error: nested too deeply", path=where) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a JSON object, got {type(data).__name__}",
                          path=where, line=1)
    return data


# --- rendering -------------------------------------------------------------------


def type_word(tp: Any) -> str:
    """The docs' name for a field type."""
    words = {bool: "boolean", int: "integer", float: "float", str: "string"}
    if tp in words:
        return words[tp]
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"array of {type_word(typing.get_args(tp)[0])}s"
    return "table"


def _is_table(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Section)


def _table_of_sections(tp: Any) -> type[Section] | None:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Mapping and args and _is_table(args[1]):
        return typing.cast("type[Section]", args[1])
    return None


def toml_key(key: str) -> str:
    """A TOML key, quoted unless it is a bare key."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """A plain value (see :func:`to_plain`) as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    return str(value)  # dates and times print as TOML literals


def _comment(text: str, width: int = 88, indent: str = "") -> list[str]:
    out = []
    for para in text.split("\n"):
        # keep ranges such as "0 .. 3600 s" on one line
        para = para.replace(" .. ", "\0..\0")
        out += textwrap.wrap(para, width - 2, break_on_hyphens=False,
                             subsequent_indent=indent) or [""]
    return [f"# {line}".rstrip().replace("\0", " ") for line in out]


def _doc(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("doc", ""))


def _class_doc(cls: type, code: str = "") -> str:
    """The class docstring, one line per paragraph, with ````x```` written ``code``x``code``."""
    paras = inspect.cleandoc(cls.__doc__ or "").replace("``", code).split("\n\n")
    return "\n".join(p.replace("\n", " ") for p in paras)


def _default_plain(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        return to_plain(f.default)
    if f.default_factory is not MISSING:
        return to_plain(f.default_factory())
    return MISSING


def render_toml(root: Section, header: str) -> str:
    """A TOML document of ``root``'s values with every key commented.

    A key documented identically in an earlier table (the keys every agent type
    shares) gets a short "as in [table]" comment instead of the full text again.
    """
    lines = _comment(header)
    _toml_table(root, "", lines, {})
    return "\n".join(lines).rstrip() + "\n"


def _allowed_sentence(f: dataclasses.Field[Any]) -> str:
    allowed = describe_allowed(f)
    return f" Allowed: {allowed}." if allowed else ""


def _toml_table(obj: Section, path: str, lines: list[str], seen: dict[str, str]) -> None:
    fields = dataclasses.fields(obj)  # type: ignore[arg-type]
    hints = type_hints(type(obj))
    scalars = [f for f in fields if not _is_table(hints[f.name])
               and not _table_of_sections(hints[f.name])]
    if path and scalars:
        lines += ["", "", *_comment(f"[{path}] -- {_class_doc(type(obj))}"), f"[{path}]"]
    for f in scalars:
        first = seen.setdefault(_doc(f), path)
        text = _doc(f) if first == path else f"As in [{first}]."
        lines += ["", *_comment(text + _allowed_sentence(f))]
        if f.metadata.get("example") is not None:
            lines += _comment(f"For example: {f.name} = {toml_value(f.metadata['example'])}")
        lines.append(f"{f.name} = {toml_value(to_plain(getattr(obj, f.name)))}")
    for f in fields:
        tp = hints[f.name]
        if _is_table(tp):
            _toml_table(getattr(obj, f.name), join(path, f.name), lines, seen)
        elif (item_cls := _table_of_sections(tp)) is not None:
            _toml_example(item_cls, join(path, f.name), f, lines, seen)


def _toml_example(cls: type[Section], path: str, f: dataclasses.Field[Any],
                  lines: list[str], seen: dict[str, str]) -> None:
    lines += ["", "", *_comment(f"[{path}.<name>] -- {_doc(f)} Keys:"), "#"]
    for sub in dataclasses.fields(cls):  # type: ignore[arg-type]
        text = f"As in [{seen[_doc(sub)]}]." if _doc(sub) in seen else _doc(sub)
        lines += _comment(f"{sub.name}: {text}{_allowed_sentence(sub)}", indent="    ")
    for name, table in (f.metadata.get("example") or {}).items():
        lines += ["#", f"# [{path}.{toml_key(name)}]"]
        lines += [f"# {k} = {toml_value(v)}" for k, v in table.items()]


def render_markdown(root: type[Section], intro: str) -> str:
    """The reference page: ``intro`` then one table of keys per TOML table."""
    out = [intro.rstrip(), ""]
    _md_table(root, "", out)
    return "\n".join(out).rstrip() + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(cls: type[Section], path: str, out: list[str]) -> None:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    hints = type_hints(cls)
    rows = [f for f in fields if not _is_table(hints[f.name])]
    if rows:
        out += [f"## `[{path}]`" if path else "## Top level", "",
                _class_doc(cls, "`").replace("\n", "\n\n"), "",
                "| Key | Type | Default | Allowed | Description |", "|---|---|---|---|---|"]
        for f in rows:
            default = _default_plain(f)
            shown = "*required*" if default is MISSING else f"`{toml_value(default)}`"
            item_cls = _table_of_sections(hints[f.name])
            kind_ = f"table of `[{join(path, f.name)}.<name>]`" if item_cls else type_word(hints[f.name])
            out.append(" | ".join(["", f"`{f.name}`", kind_, _md_cell(shown),
                                   _md_cell(describe_allowed(f)), _md_cell(_doc(f)), ""]).strip())
        out.append("")
    for f in fields:
        tp = hints[f.name]
        if _is_table(tp):
            _md_table(tp, join(path, f.name), out)
        elif (item_cls := _table_of_sections(tp)) is not None:
            _md_table(item_cls, join(path, f.name) + ".<name>", out)
