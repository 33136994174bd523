"""Operator templates for identifiers (`nice_{user}_{lineItem}`): parsed and checked once
at start, rendered per fact. A template names its placeholders in braces; anything else
is literal text."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from xpbank.config import ConfigError


@dataclass(frozen=True)
class Template:
    variable: str  # the setting it came from, for messages
    text: str
    fields: frozenset[str]

    @classmethod
    def parse(cls, variable: str, text: str, allowed: Iterable[str]) -> Template:
        allowed = frozenset(allowed)
        fields = set()
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigError(f"{variable}={text!r}: {exc} (write placeholders as {{name}})") from None
        for _, field, spec, conversion in parts:
            if field is None:
                continue
            if field not in allowed or spec or conversion:
                raise ConfigError(f"{variable}={text!r}: unknown placeholder {{{field}}}; use "
                                  + ", ".join(f"{{{name}}}" for name in sorted(allowed)))
            fields.add(field)
        return cls(variable, text, frozenset(fields))

    def require(self, *choices: str, why: str) -> None:
        """Refuse a template that names none of `choices`."""
        if not self.fields & set(choices):
            names = " or ".join(f"{{{c}}}" for c in choices)
            raise ConfigError(f"{self.variable}={self.text!r} does not name {names}: {why}")

    def render(self, values: Mapping[str, object]) -> str:
        return self.text.format_map({name: values[name] for name in self.fields})
