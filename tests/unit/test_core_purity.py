"""The decision core imports no Kafka, Faust or Redis and reads no clock or uuid4."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "xpbank" / "core"


def test_core_imports_no_broker_framework_or_store():
    probe = (
        "import sys, pkgutil, importlib, xpbank.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('xpbank.core.' + m.name)\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'faust', 'aiokafka', 'redis', 'mode', 'rocksdict'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_core_reads_no_clock_and_makes_no_random_ids():
    forbidden = re.compile(r"(datetime\.now|utcnow|time\.time\(|time\.monotonic|uuid4\(|uuid1\(|\brandom\.)")
    offenders = [
        f"{path.name}:{n}" for path in CORE.glob("*.py")
        for n, text in enumerate(path.read_text().splitlines(), 1) if forbidden.search(text)
    ]
    assert offenders == []
