"""A reader for Fluent Bit's classic configuration format, strict where Fluent Bit is.

No Fluent Bit build installs here (PyPI, npm and Debian 12 carry none), so its own `--dry-run`
cannot run; this follows the documented format instead
(https://docs.fluentbit.io/manual/administration/configuring-fluent-bit/classic-mode/format-schema):
a section is a `[NAME]` line at column 0, each entry a `Key Value` pair indented with spaces,
the same indentation throughout a section; `#` starts a comment line. Keys are
case-insensitive, so they are read lower-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SECTIONS = frozenset({"SERVICE", "INPUT", "FILTER", "OUTPUT", "PARSER", "MULTILINE_PARSER"})


class ConfError(ValueError):
    pass


@dataclass
class Section:
    kind: str
    entries: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def all(self, key: str) -> list[str]:
        """Every value of a key that may repeat (Parsers_File)."""
        return [v for k, v in self.pairs if k == key]

    @property
    def name(self) -> str:
        return self.entries.get("name", "")


def read(text: str) -> list[Section]:
    sections: list[Section] = []
    indent: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        header = re.fullmatch(r"\[([A-Z_]+)\]", line)
        if header:
            if header.group(1) not in SECTIONS:
                raise ConfError(f"line {number}: unknown section [{header.group(1)}]")
            sections.append(Section(kind=header.group(1)))
            indent = None
            continue
        if line.startswith("@"):
            raise ConfError(f"line {number}: directives (@INCLUDE/@SET) are not used here: {line}")
        if not sections:
            raise ConfError(f"line {number}: entry outside a section: {line}")
        lead = line[: len(line) - len(line.lstrip())]
        if not lead or set(lead) != {" "}:
            raise ConfError(f"line {number}: entries are indented with spaces: {line!r}")
        if indent is None:
            indent = lead
        elif lead != indent:
            raise ConfError(f"line {number}: indentation differs within [{sections[-1].kind}]: {line!r}")
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            raise ConfError(f"line {number}: an entry is `Key Value`: {line!r}")
        sections[-1].entries[parts[0].lower()] = parts[1].strip()
        sections[-1].pairs.append((parts[0].lower(), parts[1].strip()))
    return sections
