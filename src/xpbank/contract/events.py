"""Input events (SPEC §2), as frozen pydantic models. Unknown fields are ignored: the
original bytes travel to dead letters untouched, so the models keep only what rules use."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from xpbank.contract.identifiers import MAX_ID_LENGTH, id_problem
from xpbank.contract.times import Time

URN_UUID = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _within_limits(value: str, info: ValidationInfo) -> str:
    """SPEC §2.5; the limit comes from the validation context (`max_id_length`)."""
    problem = id_problem(value, (info.context or {}).get("max_id_length", MAX_ID_LENGTH))
    if problem is not None:
        raise PydanticCustomError("identifier", "{problem}", {"problem": problem})
    return value


# an identifier (SPEC §2.5): at most XPBANK_MAX_ID_LENGTH characters, no control character; non-empty
Limited = Annotated[StrictStr, AfterValidator(_within_limits)]
Id = Annotated[StrictStr, Field(min_length=1), AfterValidator(_within_limits)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def last_segment(ref: str) -> str:
    """`https://…/users/u1` and `u1` both name `u1` (OneRoster URLs or bare ids)."""
    return ref.rstrip("/").rsplit("/", 1)[-1]


# ---- Caliper TimeSpentEvent (Timeback profile) ----------------------------------


class CaliperRef(Frozen):
    id: Id


class CaliperActor(Frozen):
    id: Id
    email: StrictStr | None = None


class TimebackActivityContext(Frozen):
    activity: CaliperRef
    course: CaliperRef | None = None
    subject: StrictStr | None = None


class TimeSpentItem(Frozen):
    type: StrictStr
    value: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
    startDate: Time | None = None
    endDate: Time | None = None

    @model_validator(mode="after")
    def _window_is_ordered(self) -> TimeSpentItem:
        if self.startDate and self.endDate and self.endDate < self.startDate:
            raise ValueError("endDate is before startDate")
        return self


class TimeSpentMetrics(Frozen):
    items: tuple[TimeSpentItem, ...] = ()


class TimeSpentEvent(Frozen):
    id: Annotated[StrictStr, Field(pattern=URN_UUID.pattern)]
    type: Literal["TimeSpentEvent"]
    action: Literal["SpentTime"]
    actor: CaliperActor
    object: TimebackActivityContext
    eventTime: Time
    generated: TimeSpentMetrics

    @property
    def user(self) -> str:
        return last_segment(self.actor.id)

    @property
    def resource(self) -> str:
        return last_segment(self.object.activity.id)

    @property
    def course(self) -> str | None:
        return last_segment(self.object.course.id) if self.object.course else None


class CaliperEnvelope(Frozen):
    """IMS Caliper 1.2 envelope; each entry of `data` is decoded on its own."""

    sensor: Limited | None = None
    sendTime: Time | None = None
    dataVersion: StrictStr | None = None
    data: tuple[object, ...]


# ---- Assessment submissions ---------------------------------------------------


class SubmissionBase(Frozen):
    id: Id
    userSourcedId: Id
    exerciseSourcedId: Id
    courseSourcedId: Id
    eventTime: Time
    attempt: Annotated[StrictInt, Field(ge=1)] | None = None
    email: StrictStr | None = None


class AttemptStarted(SubmissionBase):
    type: Literal["AttemptStarted"]
    totalQuestions: Annotated[StrictInt, Field(ge=0)] | None = None


class AnswerSubmitted(SubmissionBase):
    type: Literal["AnswerSubmitted"]
    questionId: Id
    correct: StrictBool


class QuestionSkipped(SubmissionBase):
    type: Literal["QuestionSkipped"]
    questionId: Id


class QuestionReported(SubmissionBase):
    type: Literal["QuestionReported"]
    questionId: Id


class AttemptFinalized(SubmissionBase):
    type: Literal["AttemptFinalized"]
    totalQuestions: Annotated[StrictInt, Field(ge=0)] | None = None


class AttemptReset(SubmissionBase):
    type: Literal["AttemptReset"]


Submission = Annotated[
    AttemptStarted | AnswerSubmitted | QuestionSkipped | QuestionReported | AttemptFinalized | AttemptReset,
    Field(discriminator="type"),
]


# ---- Mastery -------------------------------------------------------------------


class ExerciseMastered(Frozen):
    id: Id
    type: Literal["ExerciseMastered"] = "ExerciseMastered"
    userSourcedId: Id
    exerciseSourcedId: Id
    courseSourcedId: Id
    attempt: Annotated[StrictInt, Field(ge=1)]
    accuracy: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
    exerciseXp: Annotated[StrictInt, Field(ge=0)]
    email: StrictStr | None = None
    eventTime: Time


# ---- Curriculum ----------------------------------------------------------------

ResourceKind = Literal["Article", "Video", "Exercise", "Quiz", "UnitTest", "CourseChallenge"]
SortOrder = Annotated[StrictFloat, Field(allow_inf_nan=False)]  # a JSON number (an int too), never "2" nor true


class CurriculumResource(Frozen):
    sourcedId: Id
    sortOrder: SortOrder
    kind: ResourceKind
    xp: Annotated[StrictInt, Field(ge=0)] | None = None
    type: StrictStr | None = None


class Lesson(Frozen):
    sourcedId: Id
    sortOrder: SortOrder
    resources: tuple[CurriculumResource, ...] = ()


class Unit(Frozen):
    sourcedId: Id
    sortOrder: SortOrder
    lessons: tuple[Lesson, ...] = ()


class CourseUpserted(Frozen):
    type: Literal["CourseUpserted"]
    courseSourcedId: Id
    subject: StrictStr | None = None
    units: tuple[Unit, ...] = ()


class CourseDeleted(Frozen):
    """A tombstone on the curriculum topic: the course is gone."""

    type: Literal["CourseDeleted"] = "CourseDeleted"
    courseSourcedId: Id


__all__ = [
    "AnswerSubmitted",
    "AttemptFinalized",
    "AttemptReset",
    "AttemptStarted",
    "CaliperEnvelope",
    "CourseDeleted",
    "CourseUpserted",
    "CurriculumResource",
    "ExerciseMastered",
    "QuestionReported",
    "QuestionSkipped",
    "Submission",
    "TimeSpentEvent",
    "last_segment",
]
