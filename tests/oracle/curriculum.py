"""Where a resource sits in a course, and the banking window (SPEC §3.4.1), over the
course's JSON as §2.4 writes it."""

from __future__ import annotations

from dataclasses import dataclass

PASSIVE = ("Article", "Video")


@dataclass(frozen=True)
class Placed:
    """A resource of a course: its unit (the JSON object), its order and its fields."""

    unit: dict
    order: tuple  # (lesson sortOrder, resource sortOrder, lesson sourcedId, resource sourcedId)
    resource: dict

    @property
    def id(self) -> str:
        return self.resource["sourcedId"]

    @property
    def kind(self) -> str:
        return self.resource["kind"]

    @property
    def xp(self) -> int:
        return self.resource.get("xp") or 0  # a missing xp is 0


def in_unit(unit: dict) -> list[Placed]:
    """Every resource of a unit with its order. Equal sort orders are ordered by lesson
    then resource sourcedId (docs/decisions.md, Spec readings)."""
    return [
        Placed(unit, (lesson["sortOrder"], r["sortOrder"], lesson["sourcedId"], r["sourcedId"]), r)
        for lesson in unit.get("lessons", [])
        for r in lesson.get("resources", [])
    ]


def find(units: list[dict], resource_id: str) -> Placed | None:
    """The resource's first placement in the course (units, lessons, resources in the
    order the JSON lists them), or None."""
    for unit in units:
        for placed in in_unit(unit):
            if placed.id == resource_id:
                return placed
    return None


def is_eligible(placed: Placed) -> bool:
    """§3.4.1: an Article or Video with xp > 0 (its `type` does not matter)."""
    return placed.kind in PASSIVE and placed.xp > 0


def window(units: list[dict], exercise: str) -> tuple[Placed | None, list[Placed]] | None:
    """§3.4.1: in the unit holding the exercise, the previous exercise (the Exercise with
    the greatest order below the mastered one's) and the resources strictly between it
    (or the unit's start) and the exercise, in order. None: the exercise is not in it."""
    mastered = find(units, exercise)
    if mastered is None:
        return None
    before = sorted((p for p in in_unit(mastered.unit) if p.order < mastered.order), key=lambda p: p.order)
    exercises_before = [p for p in before if p.kind == "Exercise"]
    previous = exercises_before[-1] if exercises_before else None
    between = [p for p in before if previous is None or p.order > previous.order]
    return previous, between
