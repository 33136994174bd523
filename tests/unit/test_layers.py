"""The folders are the layers, and imports only point down: a lower layer never imports
a higher one, and peers on one level never import each other. From the bottom: the
contract, the pure core, applying a record, settings and observation, the Kafka and HTTP
edges, then four peers (the read side, the stream engines, the gateway, write-back), the
processes that host them (entrypoints), and the command line."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "xpbank"

# lowest first; layers on one level are peers
LEVELS = [
    {"contract"},  # models, times, topic registry, codec, schemas
    {"core"},  # the pure rules
    {"processing"},  # applying a record: handle_record, state protocol, simulate
    {"config", "observe"},  # settings from the environment; counters and histograms a process keeps
    {"kafka", "web"},  # the Kafka edge; the HTTP edge (client limits, aiohttp internals) of both servers
    # peers: the read side (projector, read models, HTTP API content), the stream engines,
    # the HTTP gateway onto the input topics, write-back
    {"read", "runtime", "gateway", "sinks"},
    {"entrypoints"},  # the processes: the worker's runner hosts an engine, the API and the projector
    {"cli"},  # the command line and its tools
]
LEVEL = {layer: n for n, layers in enumerate(LEVELS) for layer in layers}
ENGINES = {"faust", "quix"}  # runtime/<engine>/: the shared runtime modules never import an engine


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "xpbank" or name.startswith("xpbank.")]


def layer_of(parts: tuple[str, ...]) -> str:
    return parts[0].removesuffix(".py")


def modules() -> list[tuple[Path, tuple[str, ...]]]:
    return [(path, path.relative_to(PACKAGE).parts) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_belongs_to_a_known_layer():
    unplaced = [str(parts) for _, parts in modules() if parts[0] != "__init__.py" and layer_of(parts) not in LEVEL]
    assert unplaced == []


def test_imports_only_point_down():
    offenders = []
    for path, parts in modules():
        if parts[0] == "__init__.py":
            continue
        mine = layer_of(parts)
        for name in imports(path):
            target = name.split(".")[1] if "." in name else None
            if target is None or target not in LEVEL or target == mine:
                continue
            if LEVEL[target] >= LEVEL[mine]:
                offenders.append(f"{'/'.join(parts)} ({mine}) imports {name} ({target})")
    assert offenders == []


def test_the_shared_runtime_never_imports_an_engine():
    offenders = [
        f"{'/'.join(parts)} imports {name}"
        for path, parts in modules()
        if parts[0] == "runtime" and len(parts) == 2
        for name in imports(path)
        if name.split(".")[:3][-1] in ENGINES and name.startswith("xpbank.runtime.")
    ]
    assert offenders == []


def test_the_layer_test_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "xpbank"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from xpbank.kafka.admin import Admin\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    try:
        test_imports_only_point_down()
    except AssertionError as failure:
        assert "core/bad.py (core) imports xpbank.kafka.admin (kafka)" in str(failure)
    else:
        raise AssertionError("an upward import went unnoticed")


MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 350


def test_no_function_over_60_lines_and_no_module_over_350():
    """Small enough to read at once (a nested function counts within its own)."""
    offenders = []
    for path, parts in modules():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            offenders.append(f"{'/'.join(parts)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    offenders.append(f"{'/'.join(parts)}:{node.lineno} {node.name}: {length} lines")
    assert offenders == []
