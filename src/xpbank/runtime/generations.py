"""Generations on the broker and on this machine (`xpbank generations`): each one's
consumer group, its own topics (changelogs, the re-key topic and anything else named
after its group), its store directories, lag, and which one is live.

Names come from `topology.app_id`: `<prefix>xpbank-g<N>` for Faust, `<prefix>xpbank-quix-g<N>`
for Quix; every topic of a generation starts with its group and a dash, and a worker's
stores are `XPBANK_DATA_DIR/<group>`.

**Live** (decisions.md 12): the generations whose group has members now; when no group
has any (every worker stopped), the highest generation with committed offsets. `drop`
refuses a live generation, one whose group has members, and the one XPBANK_GENERATION
names here."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from xpbank.config import Settings
from xpbank.kafka.admin import Admin
from xpbank.kafka.groups import delete_groups, delete_topics, group_names
from xpbank.runtime.topology import app_id, input_topics

ENGINE_OF = {None: "faust", "quix": "quix"}


def parse_group(prefix: str, name: str) -> tuple[str, int] | None:
    """(engine, generation) of a generation's group name, else None."""
    found = re.fullmatch(re.escape(prefix) + r"xpbank-(?:(quix)-)?g(\d+)", name)
    return (ENGINE_OF[found[1]], int(found[2])) if found else None


def owner_of_topic(prefix: str, name: str) -> tuple[str, int] | None:
    """(engine, generation) of a topic named after a generation's group."""
    found = re.match(re.escape(prefix) + r"(xpbank-(?:quix-)?g\d+)-", name)
    return parse_group(prefix, prefix + found[1]) if found else None


@dataclass(frozen=True)
class Generation:
    number: int
    engine: str
    group: str
    group_exists: bool
    topics: tuple[str, ...]
    directories: tuple[Path, ...]
    members: int = 0
    committed: bool = False
    lag: int | None = None


def live(generations: list[Generation]) -> set[tuple[str, int]]:
    """(engine, number) of the live generations (see the module's docstring)."""
    running = {(g.engine, g.number) for g in generations if g.members}
    if running:
        return running
    committed = [g for g in generations if g.committed]
    top = max((g.number for g in committed), default=None)
    return {(g.engine, g.number) for g in committed if g.number == top}


def refusal(number: int, generations: list[Generation], configured: int) -> str | None:
    """Why generation `number` must not be dropped, or None."""
    mine = [g for g in generations if g.number == number]
    if any(g.members for g in mine):
        return f"generation {number} has running members ({', '.join(g.group for g in mine if g.members)})"
    if any((g.engine, g.number) in live(generations) for g in mine):
        return f"generation {number} is the live one (the highest with committed offsets, and no group has members)"
    if number == configured:
        return f"generation {number} is the one XPBANK_GENERATION names here"
    return None


async def discover(settings: Settings) -> list[Generation]:
    """Every generation found on the broker or under XPBANK_DATA_DIR, by number then engine."""
    prefix, admin = settings.topic_prefix, Admin(settings)
    groups = {key: name for name in await group_names(admin) if (key := parse_group(prefix, name))}
    topics: dict[tuple[str, int], list[str]] = {}
    for name in sorted((await admin.metadata()).topics):
        if key := owner_of_topic(prefix, name):
            topics.setdefault(key, []).append(name)
    directories: dict[tuple[str, int], list[Path]] = {}
    if settings.data_dir.is_dir():
        for path in sorted(settings.data_dir.iterdir()):
            if path.is_dir() and (key := parse_group(prefix, path.name)):
                directories.setdefault(key, []).append(path)
    found = []
    for engine, number in sorted(set(groups) | set(topics) | set(directories), key=lambda k: (k[1], k[0])):
        named = dataclasses.replace(settings, engine=engine, rules=dataclasses.replace(settings.rules, generation=number))
        group = app_id(named)
        view = await admin.group(group) if (engine, number) in groups else None
        committed = await admin.committed(group, retry_for=10) if view else {}
        rows = await admin.partition_lag(group, input_topics(named)) if committed else []
        found.append(Generation(number, engine, group, view is not None, tuple(topics.get((engine, number), ())),
                                tuple(directories.get((engine, number), ())), len(view.members) if view else 0,
                                bool(committed), sum(r.lag for r in rows) if committed else None))
    return found


async def drop(settings: Settings, number: int) -> tuple[list[str], list[str], list[Path]]:
    """Delete generation `number` of both engines: groups, topics, store directories on
    this machine. Returns what was deleted; raises ValueError when it must not be."""
    generations = await discover(settings)
    why = refusal(number, generations, settings.rules.generation)
    if why:
        raise ValueError(why)
    mine = [g for g in generations if g.number == number]
    admin = Admin(settings)
    groups = await delete_groups(admin, [g.group for g in mine if g.group_exists])
    topics = await delete_topics(admin, [t for g in mine for t in g.topics])
    directories = [d for g in mine for d in g.directories]
    for directory in directories:
        await asyncio.to_thread(shutil.rmtree, directory)
    return groups, topics, directories
