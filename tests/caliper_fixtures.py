"""Caliper envelopes in the shapes of the public examples, written for xpbank (not copied):

- the Timeback events API's TimeSpentEvent examples (trilogy-group/timeback-client,
  `_timebackDocs/timeback-events-api.yaml`, examples 5-8: active, inactive, waste, slim):
  sensor `https://alpharead.alpha.school`-like, no `@context`, TimebackUser actor with a
  OneRoster user URL, TimebackActivityContext object, `generated.items` in seconds;
- IMS Caliper 1.2 envelope fixtures (IMSGlobal/caliper-spec `develop`, `fixtures/v1p2`):
  a single AssessmentEvent, a batch of three events of one actor, a "thinned" event whose
  actor and object are IRIs, a mixed batch of entities and events, a ToolUseEvent, and the
  same envelope under the 1.1 `dataVersion`.

Times are relative to now (records reach a broker; see tests/unit/test_fixture_dates.py)."""

from __future__ import annotations

import copy
import uuid

from tests.builders import at

V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
ROSTER = "https://api.school.example/ims/oneroster/rostering/v1p2"
SENSOR = "https://reading.school.example"
IMS_SENSOR = "https://example.edu/sensors/1"


def urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, ':'.join(map(str, parts)))}"


def envelope(data: list, sensor: str = SENSOR, version: str = V1P2, sent: float = 0) -> dict:
    return {"sensor": sensor, "sendTime": at(sent), "dataVersion": version, "data": data}


# ---- Timeback (examples 5-8 of the events API) ---------------------------------------


def timeback_time_spent(user: str = "student-0001", items: list | None = None, slim: bool = False,
                        event_id: str | None = None, t: float = -600) -> dict:
    """A TimeSpentEvent as the Timeback examples send it (no @context, no edApp)."""
    obj = {"id": "https://reading.school.example/ims/activity/context", "type": "TimebackActivityContext",
           "subject": "Reading", "app": {"name": "Reading UI"}}
    if not slim:
        obj["activity"] = {"name": "Answered quiz", "id": f"{ROSTER}/courses/components/lesson-7"}
        obj["course"] = {"id": f"{ROSTER}/courses/reading-g3", "name": "Reading G3"}
    return {
        "id": event_id or urn("timeback", user, t, str(items)),
        "eventTime": at(t),
        "profile": "TimebackProfile",
        "type": "TimeSpentEvent",
        "actor": {"id": f"{ROSTER}/users/{user}", "type": "TimebackUser", "email": f"{user}@school.example"},
        "action": "SpentTime",
        "object": obj,
        "generated": {"id": "https://reading.school.example/ims/metrics/collections/activity/1",
                      "type": "TimebackTimeSpentMetricsCollection",
                      "items": items if items is not None else [{"type": "active", "value": 10}]},
    }


def timeback_examples() -> dict[str, dict]:
    """The four TimeSpentEvent example envelopes: active, inactive, waste, slim."""
    return {
        "active": envelope([timeback_time_spent(items=[{"type": "active", "value": 10}])]),
        "inactive": envelope([timeback_time_spent(items=[{"type": "inactive", "value": 10}])]),
        "waste": envelope([timeback_time_spent(items=[{"type": "waste", "value": 10, "subType": "eating"}])]),
        "slim": envelope([timeback_time_spent(slim=True, items=[
            {"type": "active", "value": 10}, {"type": "waste", "value": 2, "subType": "eating"},
            {"type": "inactive", "value": 2}])]),
    }


# ---- IMS Caliper 1.2 envelope fixtures (shapes of fixtures/v1p2) ----------------------

PERSON = {"id": "https://example.edu/users/554433", "type": "Person"}
ED_APP = {"id": "https://example.edu", "type": "SoftwareApplication"}
SECTION = {"id": "https://example.edu/terms/201601/courses/7/sections/1", "type": "CourseSection",
           "courseNumber": "CPS 435-01", "academicSession": "Fall 2016"}


def _event(kind: str, action: str, obj: object, n: int, **more) -> dict:
    return {"@context": V1P2, "id": urn("ims", kind, action, n), "type": kind, "profile": "GeneralProfile",
            "actor": PERSON, "action": action, "object": obj, "eventTime": at(-900 + n), "edApp": ED_APP,
            "group": SECTION, **more}


def ims_examples() -> dict[str, dict]:
    assessment = {"id": "https://example.edu/terms/201601/courses/7/sections/1/assess/1", "type": "Assessment",
                  "name": "Quiz One", "maxScore": 15.0}
    page = {"id": "https://example.edu/terms/201601/courses/7/sections/1/pages/2", "type": "WebPage"}
    single = envelope([_event("AssessmentEvent", "Started", assessment, 1, profile="AssessmentProfile",
                              generated={"id": f"{assessment['id']}/users/554433/attempts/1", "type": "Attempt",
                                         "assignee": PERSON, "assignable": assessment, "count": 1})],
                      sensor=IMS_SENSOR)
    batch = envelope([
        _event("NavigationEvent", "NavigatedTo", page, 2, profile="ReadingProfile"),
        _event("AnnotationEvent", "Bookmarked", page, 3, profile="AnnotationProfile",
               generated={"id": "https://example.com/users/554433/texts/imscaliperimplguide/bookmarks/1",
                          "type": "BookmarkAnnotation", "annotator": PERSON}),
        _event("ViewEvent", "Viewed", page, 4, profile="ReadingProfile"),
    ], sensor=IMS_SENSOR)
    thinned = envelope([{"@context": V1P2, "id": urn("ims", "thinned"), "type": "NavigationEvent",
                         "profile": "ReadingProfile", "actor": "https://example.edu/users/554433",
                         "action": "NavigatedTo", "object": page["id"], "eventTime": at(-800),
                         "edApp": "https://example.edu", "group": SECTION["id"]}], sensor=IMS_SENSOR)
    mixed = envelope([
        {"@context": V1P2, **PERSON}, {"@context": V1P2, **assessment}, {"@context": V1P2, **ED_APP},
        {"@context": V1P2, **SECTION},
        {"@context": V1P2, "id": urn("ims", "mixed", 1), "type": "AssessmentEvent", "profile": "AssessmentProfile",
         "actor": PERSON["id"], "action": "Started", "object": assessment["id"], "eventTime": at(-700)},
        {"@context": V1P2, "id": urn("ims", "mixed", 2), "type": "GradeEvent", "profile": "GradingProfile",
         "actor": {"id": "https://example.edu/autograder", "type": "SoftwareApplication"}, "action": "Graded",
         "object": f"{assessment['id']}/users/554433/attempts/1", "eventTime": at(-650)},
    ], sensor=IMS_SENSOR)
    tool_use = envelope([_event("ToolUseEvent", "Used", ED_APP, 5, profile="ToolUseProfile")], sensor=IMS_SENSOR)
    v1p1 = copy.deepcopy(tool_use)
    v1p1["dataVersion"] = V1P1
    for event in v1p1["data"]:
        event["@context"] = V1P1
        event.pop("profile")
    return {"single": single, "batch": batch, "thinned": thinned, "mixed": mixed, "tool_use": tool_use, "v1p1": v1p1}
