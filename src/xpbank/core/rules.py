"""The tunable limits of the rules (SPEC §2.1, §2.5, §3.6), as one immutable value."""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True)
class Rules:
    lateness_seconds: int = 3600
    max_clock_skew_seconds: int = 300
    max_unanchored_seconds: int = 60
    max_payload_bytes: int = 262144
    generation: int = 1
    max_id_length: int = 512  # SPEC §2.5
    max_events_per_envelope: int = 1000

    @property
    def lateness_us(self) -> int:
        return self.lateness_seconds * MICROS

    @property
    def max_clock_skew_us(self) -> int:
        return self.max_clock_skew_seconds * MICROS
