"""xpbank: an event-sourced stream processor that turns learning events into XP."""

__version__ = "0.1.0"
