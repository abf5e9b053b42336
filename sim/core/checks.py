"""One way to check input: the error every input file and command-line option raises, and the checks they share.

Scenario files, sweep specs, the calibration config and the targets are read with `read_toml` and checked with
the functions below, so a given mistake (a string where a list is needed, a month written wrongly, an unknown key)
is worded the same way wherever it is made. Every failure raises `InputError`, which names the file (or option),
the key and what is allowed; the command line prints it as one line and exits with code 2 before doing any work.

A small module rather than a schema library: most rules here are about the model's own vocabularies (parameter
names and ranges from sim/core/parameters.py, families, regions, simulated months), which a schema library would need
as custom validators anyway, and its messages would need translating back into this form.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Iterable, NoReturn

from sim.core.calendar import month_label, parse_month


class Argument(str):
    """The name of a library function's argument as the source of an error (e.g. project()'s `members`): the
    command line words it as its own option (--members); the library never names options."""


class InputError(ValueError):
    """Bad input: `source` is the file, option or Argument, `key` the dotted key inside it (may be empty),
    `message` what is wrong and what is allowed."""

    def __init__(self, source: Path | str, key: str, message: str):
        super().__init__(": ".join(part for part in (str(source), key, message) if part))
        self.path, self.key, self.message = str(source), key, message
        self.argument = source if isinstance(source, Argument) else None

    def within(self, source: Path | str, prefix: str = "") -> "InputError":
        """The same error placed in `source`, its key under `prefix` (e.g. a shock inside a scenario file)."""
        return InputError(source, join(prefix, self.key), self.message)


def join(*keys: str) -> str:
    return ".".join(k for k in keys if k)


def fail(source: Path | str, key: str, message: str) -> NoReturn:
    raise InputError(source, key, message)


def read_toml(path: Path | str, what: str, needs: str) -> dict[str, Any]:
    """A TOML file's content; one InputError (not a traceback) for a missing, unreadable, binary, malformed or
    empty file. `what` names the kind of file in messages ("scenario file", ...), `needs` what an empty one lacks."""
    path = Path(path)
    if path.is_dir():
        fail(path, "file", f"a folder, not a {what}")
    if not path.is_file():
        fail(path, "file", f"no such {what}")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        fail(path, "file", f"cannot read it ({err.strerror or err})")
    except UnicodeDecodeError as err:
        fail(path, "file", f"not a text file (byte {err.start} is not UTF-8); a {what} is TOML text")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        fail(path, "toml", f"not valid TOML ({err})")
    if not data:
        fail(path, "file", f"empty; a {what} needs {needs}")
    return data


# --- values ------------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _span(low, high, low_open=False) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'above' if low_open else 'of at least'} {low}"
    if low is None:
        return f" of at most {high}"
    return f" in {'(' if low_open else '['}{low}, {high}]"


def number(source, key, value, low=None, high=None, *, low_open=False) -> float:
    """A finite number (not true/false) within [low, high] (or (low, high] when `low_open`)."""
    inside = _is_number(value) and math.isfinite(value) and (
        low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
    if not inside:
        if low == 0 and low_open and high is None:
            fail(source, key, f"must be a positive number, got {value!r}")
        fail(source, key, f"must be a number{_span(low, high, low_open)}, got {value!r}")
    return float(value)


def whole(source, key, value, low=None, high=None) -> int:
    """A whole number within [low, high]."""
    if not (isinstance(value, int) and not isinstance(value, bool)) or (low is not None and value < low) or (
            high is not None and value > high):
        fail(source, key, f"must be a whole number{_span(low, high)}, got {value!r}")
    return value


def flag(source, key, value) -> bool:
    if not isinstance(value, bool):
        fail(source, key, f"must be true or false, got {value!r}")
    return value


def text(source, key, value, *, required=False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        fail(source, key, f"must be {'non-empty ' if required else ''}text, got {value!r}")
    return value


def folder_name(source, key, value) -> str:
    """A name that becomes an output folder: letters, digits, '_' and '-' only."""
    if not isinstance(value, str) or not value.replace("_", "").replace("-", "").isalnum():
        fail(source, key, f"required; letters, digits, '_' or '-' (it names the output folder), got {value!r}")
    return value


def choice(source, key, value, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        fail(source, key, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def texts(source, key, value, *, what="texts", nonempty=False) -> list[str]:
    """A list of texts (a single text is refused: TOML lists are written [\"a\", \"b\"])."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (nonempty and not value):
        fail(source, key, f"must be a {'non-empty ' if nonempty else ''}list of {what}, e.g. [\"...\"], "
             f"got {value!r}")
    return value


def names(source, key, value, allowed: Iterable[str], *, what="value", unique=False) -> list[str]:
    """A non-empty list of names, each one of `allowed`."""
    allowed = tuple(allowed)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        fail(source, key, f"must be a non-empty list, e.g. [\"{allowed[0]}\"], of: {', '.join(allowed)}; "
             f"got {value!r}")
    for item in value:
        if item not in allowed:
            fail(source, key, f"unknown {what} {item!r}; allowed: {', '.join(allowed)}")
    if unique and len(set(value)) != len(value):
        fail(source, key, f"lists a {what} twice")
    return value


def month(source, key, value, first: str | None = None, last: str | None = None) -> int:
    """A month 'YYYY-MM' (index), optionally within [first, last]."""
    try:
        if not isinstance(value, str) or len(value) != 7:
            raise ValueError(value)
        index = parse_month(value)
    except ValueError:
        fail(source, key, f"{value!r} is not a month; write it as YYYY-MM, e.g. 2026-01")
    if (first is not None and index < parse_month(first)) or (last is not None and index > parse_month(last)):
        fail(source, key, f"{month_label(index)} is outside the simulated months {first} to {last}")
    return index


def table(source, key, value, allowed: Iterable[str], *, required: Iterable[str] = ()) -> dict[str, Any]:
    """A TOML table holding only `allowed` keys and every `required` one."""
    allowed = tuple(allowed)
    if not isinstance(value, dict):
        fail(source, key, f"must be a table with keys: {', '.join(allowed)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        fail(source, join(key, unknown[0]), f"unknown key; allowed: {', '.join(allowed)}")
    for name in required:
        if name not in value:
            fail(source, join(key, name), "missing")
    return value


def parameter(source, key, name: str, value: Any) -> Any:
    """A value for model parameter `name`, checked against the parameter table (sim/core/parameters.py)."""
    from sim.core.parameters import PARAMETERS, check_value

    if name not in PARAMETERS:
        fail(source, key, f"unknown parameter; allowed: {', '.join(PARAMETERS)}")
    try:
        return check_value(name, value)
    except ValueError as err:
        fail(source, key, str(err))
