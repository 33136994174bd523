"""Benchmark inputs built straight as bytes (orjson): a course, TimeSpent heartbeats as
single events or 20-event Caliper envelopes, and attempt sequences. Valid per SPEC §2."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

COURSE = "bench-course"
SENSOR = "https://app.example.org"
CALIPER_V = "http://purl.imsglobal.org/ctx/caliper/v1p2"
ROSTER = "https://roster.example.org/ims/oneroster/rostering/v1p2/users/"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Clock:
    """Milliseconds after a start (a whole second), each second formatted once (strftime
    dominates otherwise)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.cache = start.replace(microsecond=0), {}

    def iso(self, ms: int) -> str:
        second, milli = divmod(ms, 1000)
        text = self.cache.get(second)
        if text is None:
            text = self.cache[second] = iso(self.start + timedelta(seconds=second))[:-4]  # "...:SS."
        return f"{text}{milli:03d}Z"

    def ms(self, ms: int) -> int:
        return int(self.start.timestamp()) * 1000 + ms


def learner_clock_ms(learner: int) -> int:
    """Each learner's clock runs its own offset (< 30 s, to the millisecond), as devices'
    clocks do: times recur within a learner's heartbeats (one's endDate is the next one's
    startDate), not across learners."""
    return learner * 7919 % 30_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def course(resources: int) -> bytes:
    """One unit: `resources` passive resources (Video/Article, xp 5) in pairs of lessons,
    each lesson closed by an exercise, so every exercise's window has passive content."""
    lessons = []
    for l in range(resources // 2):
        lessons.append({"sourcedId": f"l{l}", "sortOrder": l + 1, "resources": [
            {"sourcedId": f"video-{2 * l}", "sortOrder": 1, "kind": "Video", "xp": 5, "type": "interactive"},
            {"sourcedId": f"article-{2 * l + 1}", "sortOrder": 2, "kind": "Article", "xp": 5, "type": "interactive"},
            {"sourcedId": f"exercise-{l}", "sortOrder": 3, "kind": "Exercise", "xp": 3}]})
    return orjson.dumps({"type": "CourseUpserted", "courseSourcedId": COURSE, "subject": "Math",
                         "units": [{"sourcedId": "u1", "sortOrder": 1, "lessons": lessons}]})


def resource_id(r: int) -> str:
    return f"video-{r}" if r % 2 == 0 else f"article-{r}"


class Ids:
    """Distinct urn:uuid ids without uuid5's cost: a random run prefix and a counter."""

    def __init__(self) -> None:
        self.high = uuid.uuid4().int >> 64 << 64
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"urn:uuid:{uuid.UUID(int=self.high | self.n)}"


def time_spent(ids: Ids, user: str, resource: int | str, at: datetime | tuple[Clock, int], seconds: int = 30) -> dict:
    rid = resource if isinstance(resource, str) else resource_id(resource)
    if isinstance(at, tuple):
        clock, ms = at
        end, begin = clock.iso(ms), clock.iso(ms - seconds * 1000)
    else:
        end, begin = iso(at), iso(at - timedelta(seconds=seconds))
    return {
        "id": ids(), "type": "TimeSpentEvent", "action": "SpentTime",
        "actor": {"id": ROSTER + user, "email": f"{user}@example.org"},
        "object": {"activity": {"id": f"https://roster.example.org/resources/{rid}"},
                   "course": {"id": COURSE}, "subject": "Math"},
        "eventTime": end,
        "generated": {"items": [{"type": "active", "value": seconds, "startDate": begin, "endDate": end}]},
    }


Record = tuple[bytes, bytes, int]  # key, value, timestamp ms


def singles(events: int, learners: int, resources: int, start: datetime) -> list[Record]:
    """Shape (a): one TimeSpentEvent per record, learners round-robin, each learner's
    resources in turn, so every (learner, resource) pair gets events/(learners*resources)."""
    ids, out, clock = Ids(), [], Clock(start)
    for n in range(events):
        rnd, learner = divmod(n, learners)
        user = f"learner-{learner:05d}"
        at = 30_000 * rnd + learner_clock_ms(learner)
        out.append((user.encode(), orjson.dumps(time_spent(ids, user, rnd % resources, (clock, at))), clock.ms(at)))
    return out


def envelopes(events: int, learners: int, resources: int, start: datetime, per: int = 20,
              per_resource: int = 5) -> list[Record]:
    """Shape (b): Caliper envelopes of `per` events of one learner (`per_resource`
    consecutive heartbeats on each resource)."""
    ids, out, clock = Ids(), [], Clock(start)
    for n in range(events // per):
        rnd, learner = divmod(n, learners)
        user = f"learner-{learner:05d}"
        data, first, own = [], rnd * per, learner_clock_ms(learner)
        for i in range(per):
            data.append(time_spent(ids, user, ((first + i) // per_resource) % resources,
                                   (clock, 30_000 * (first + i) + own)))
        sent = 30_000 * (first + per - 1) + own
        value = {"sensor": SENSOR, "sendTime": clock.iso(sent), "dataVersion": CALIPER_V, "data": data}
        out.append((user.encode(), orjson.dumps(value), clock.ms(sent)))
    return out


def submission(ids: Ids, kind: str, user: str, exercise: str, at: datetime, **fields) -> bytes:
    return orjson.dumps({"id": ids(), "type": kind, "userSourcedId": user, "exerciseSourcedId": exercise,
                         "courseSourcedId": COURSE, "eventTime": iso(at), **fields})


def attempt(ids: Ids, user: str, exercise: str, at: datetime, questions: int = 3) -> list[bytes]:
    """AttemptStarted and all-correct answers (to send first), then the AttemptFinalized
    (last): accuracy 100 publishes an ExerciseMastered, which banks the passive time."""
    lines = [submission(ids, "AttemptStarted", user, exercise, at, totalQuestions=questions)]
    lines += [submission(ids, "AnswerSubmitted", user, exercise, at, questionId=f"q{q}", correct=True)
              for q in range(questions)]
    lines.append(submission(ids, "AttemptFinalized", user, exercise, at, email=f"{user}@example.org"))
    return lines


def now() -> datetime:
    return datetime.now(UTC)
