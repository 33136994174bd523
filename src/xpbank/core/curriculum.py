"""Course structure queries: where a resource sits and the banking window (SPEC §3.4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from xpbank.contract.events import CourseUpserted, CurriculumResource, Lesson, Unit

PASSIVE_KINDS = frozenset({"Article", "Video"})


@dataclass(frozen=True)
class Placed:
    """A resource with the unit and lesson that hold it."""

    resource: CurriculumResource
    unit: Unit
    lesson: Lesson

    @property
    def order(self) -> tuple:
        # sourcedIds break ties so equal sort orders still give one deterministic order
        return (self.lesson.sortOrder, self.resource.sortOrder, self.lesson.sourcedId, self.resource.sourcedId)


@dataclass(frozen=True)
class Window:
    exercise: Placed
    previous: Placed | None
    between: tuple[Placed, ...]

    @property
    def eligible(self) -> tuple[Placed, ...]:
        return tuple(p for p in self.between if is_eligible(p.resource))

    @property
    def anomalies(self) -> tuple[str, ...]:
        return tuple(a for p in self.between if (a := anomaly(p.resource)))


def placements(course: CourseUpserted) -> dict[str, Placed]:
    """Every resource of the course by sourcedId (the first placement wins)."""
    found: dict[str, Placed] = {}
    for unit in course.units:
        for lesson in unit.lessons:
            for resource in lesson.resources:
                found.setdefault(resource.sourcedId, Placed(resource, unit, lesson))
    return found


def locate(course: CourseUpserted, resource_id: str) -> Placed | None:
    return placements(course).get(resource_id)


def is_eligible(resource: CurriculumResource) -> bool:
    return resource.kind in PASSIVE_KINDS and (resource.xp or 0) > 0


def anomaly(resource: CurriculumResource) -> str | None:
    """A passive resource whose metadata would have hidden it in the old system."""
    if resource.kind not in PASSIVE_KINDS:
        return None
    if not resource.xp:
        return f"{resource.kind} {resource.sourcedId} has no xp: not eligible for banking"
    if resource.type != "interactive":
        return f"{resource.kind} {resource.sourcedId} has type {resource.type!r}, not 'interactive': banked anyway"
    return None


def banking_window(course: CourseUpserted, exercise_id: str) -> Window | None:
    """The resources strictly between the previous Exercise and this one, in its unit."""
    exercise = locate(course, exercise_id)
    if exercise is None:
        return None
    in_unit = [
        Placed(resource, exercise.unit, lesson)
        for lesson in exercise.unit.lessons
        for resource in lesson.resources
    ]
    before = sorted((p for p in in_unit if p.order < exercise.order), key=lambda p: p.order)
    previous = next((p for p in reversed(before) if p.resource.kind == "Exercise"), None)
    between = tuple(p for p in before if previous is None or p.order > previous.order)
    return Window(exercise, previous, between)
