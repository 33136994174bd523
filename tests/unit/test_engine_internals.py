"""The library internals the engines rely on, pinned and checked: each touch point of
runtime/faust/internals.py and runtime/quix/internals.py still exists, with the shape
it was read with, in the installed versions; and no other module of src/ names a
private attribute of faust, mode, quixstreams, aiokafka or confluent_kafka, nor
subclasses one of their classes."""

from __future__ import annotations

import ast
import inspect
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

from xpbank.runtime.faust import internals as faust_internals
from xpbank.runtime.quix import internals as quix_internals

SRC = Path(__file__).resolve().parents[2] / "src" / "xpbank"
LIBRARIES = ("faust", "mode", "quixstreams", "aiokafka", "confluent_kafka", "rocksdict")
# the modules that may touch internals: one per engine, and aiokafka's fixes (every
# aiokafka client, not only Faust's, needs them; tests/unit/test_aiokafka_fixes.py)
INTERNALS_MODULES = {"runtime/faust/internals.py", "runtime/quix/internals.py", "kafka/aiokafka_fixes.py"}
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make", "_exit"}  # namedtuple's API, os._exit


def test_the_installed_libraries_are_the_versions_the_internals_were_read_from():
    assert version("faust-streaming") == faust_internals.FAUST_VERSION
    assert version("mode-streaming") == faust_internals.MODE_VERSION
    assert version("quixstreams") == quix_internals.QUIXSTREAMS_VERSION


def test_faust_touch_points_keep_their_shape():
    from faust.stores.rocksdb import Store
    from faust.transport.consumer import Consumer
    from mode.worker import Worker

    assert list(inspect.signature(Store._db_for_partition).parameters) == ["self", "partition"]
    assert "self._dbs" in inspect.getsource(Store)
    assert list(inspect.signature(Consumer._commit_offsets).parameters)[:2] == ["self", "offsets"]
    assert inspect.iscoroutinefunction(Consumer._commit_offsets)
    assert list(inspect.signature(Worker._schedule_shutdown).parameters) == ["self", "signal"]
    assert "self._signal_stop_time" in inspect.getsource(Worker)
    for handler in ("_on_sigterm", "_on_sigint"):  # both signals go through _schedule_shutdown
        assert "_schedule_shutdown" in inspect.getsource(getattr(Worker, handler))


def test_faust_bulk_restore_touch_points_keep_their_shape():
    """A newly assigned partition's database is open when `assign_partitions` returns, and
    Faust's recovery reads the persisted offsets only after every table's on_rebalance."""
    from faust.stores.rocksdb import Store
    from faust.tables.base import Collection
    from faust.tables.manager import TableManager

    assert list(inspect.signature(Collection._new_store_by_url).parameters) == ["self", "url"]
    assert list(inspect.signature(Store.assign_partitions).parameters) == ["self", "table", "tps", "generation_id"]
    assert "self.assign_partitions(" in inspect.getsource(Store.on_rebalance)
    assert Store.offset_key == b"__faust\x00offset__"
    assert "self.offset_key" in inspect.getsource(Store.persisted_offset)
    from confluent_kafka import KafkaError

    assert isinstance(KafkaError._PARTITION_EOF, int)
    assert faust_internals.is_partition_end(KafkaError(KafkaError._PARTITION_EOF))
    assert not faust_internals.is_partition_end(KafkaError(KafkaError._TIMED_OUT))
    rebalance = inspect.getsource(TableManager.on_rebalance)
    assert rebalance.index("table.on_rebalance") < rebalance.index("self.recovery.on_rebalance")


def test_the_faust_memory_store_is_read_and_written_as_a_dict():
    store = SimpleNamespace(data={})  # faust's memory store: its `data` dict, no per-partition databases
    assert not faust_internals.is_rocksdb(store)
    assert faust_internals.write_batch(store, 0, [(b"k", b"v")]) and faust_internals.read_key(store, 0, b"k") == b"v"
    assert faust_internals.write_batch(store, 0, [(b"k", None)]) and faust_internals.read_key(store, 0, b"k") is None


def test_quix_touch_points_keep_their_shape():
    from quixstreams import Application
    from quixstreams.internal_producer import InternalProducer
    from quixstreams.models import TopicManager

    assert list(inspect.signature(TopicManager._internal_name).parameters) == [
        "self", "topic_type", "topic_name", "suffix"]
    assert "self._consumer_group" in inspect.getsource(TopicManager)
    assert list(inspect.signature(Application._process_message).parameters) == ["self", "dataframe_composed"]
    for hook in ("_on_assign", "_on_revoke", "_on_lost"):
        assert list(inspect.signature(getattr(Application, hook)).parameters) == ["self", "_", "topic_partitions"]
    source = inspect.getsource(Application.__init__)
    for attribute in ("self._run_tracker", "self._consumer =", "self._topic_manager ="):
        assert attribute in source, attribute
    assert "self._producer = Producer(" in inspect.getsource(InternalProducer.__init__)
    for caller in (Application._run_dataframe, Application._on_revoke):  # the loop, the stop, a revocation:
        assert "processing_context.commit_checkpoint(" in inspect.getsource(caller)  # each routed through ours


def test_unacknowledged_counts_what_librdkafka_still_holds():
    from quixstreams.internal_producer import InternalProducer

    producer = InternalProducer(broker_address="127.0.0.1:1")  # nothing answers: the record stays queued
    producer.produce(topic="t", value=b"x")
    held = quix_internals.unacknowledged(producer)  # (librdkafka also counts its own queued events)
    assert isinstance(held, int) and held >= 1
    producer.purge()


def _library_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in LIBRARIES}
    return names


def test_no_other_module_touches_a_library_private_name_or_subclasses_a_library_class():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in INTERNALS_MODULES:
            continue
        tree = ast.parse(path.read_text())
        library = _library_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
                owner = node.value
                if node.attr in PUBLIC_UNDERSCORED or (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    continue
                if relative == "web/aiohttp_server.py":  # aiohttp's, not an engine library's: kept there
                    continue
                if relative == "config/values.py" and ast.unparse(owner) == "other":  # the same class's field
                    continue
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.ClassDef):  # a public extension point may be subclassed, no private hook
                bases = {ast.unparse(base).split(".")[0] for base in node.bases}
                private = [f.name for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                           and f.name.startswith("_") and not f.name.endswith("__")]
                if bases & library and private:
                    found.append(f"{relative}:{node.lineno}: class {node.name} overrides {private} of {bases & library}")
    assert found == [], "library internals outside the internals modules:\n" + "\n".join(found)


def test_a_faust_agents_channel_queue_holds_the_records_delivered_and_not_yet_read():
    """The Faust engine checkpoints held outputs at once when its agent's channel queue is
    empty (runtime/faust/app.py `learners`): that queue is the one the stream reads, so it
    is empty exactly when no delivered record waits behind the current one."""
    import asyncio

    import faust

    app = faust.App("xpbank-queue-check", broker="kafka://127.0.0.1:1", store="memory://")  # never connected
    seen: list[tuple[int, bool]] = []
    gate: list[asyncio.Event] = []

    @app.agent()
    async def agent(stream):
        waiting = stream.channel.queue
        async for value in stream:
            await gate[0].wait()  # the first read waits until three were delivered
            seen.append((value, waiting.empty()))

    async def run() -> None:
        gate.append(asyncio.Event())
        async with agent.test_context() as tested:
            for n in range(3):
                await tested.put(n, wait=False)
            gate[0].set()
            while len(seen) < 3:
                await asyncio.sleep(0.01)
            await tested.put(3)  # one alone

    asyncio.run(asyncio.wait_for(run(), 30))
    assert seen == [(0, False), (1, False), (2, True), (3, True)]
