"""What bounds a figure that misses its target (issue 25.5): the profile taken while it
was measured, summarised for the report.

Engine figures come from py-spy's collapsed stacks of the worker (`profile()` in
scenarios.py, sampling at 50 Hz without pausing the process, active threads only); the
core's from cProfile over the same records (bench/core.py). A summary names where the
samples end (self time by function), which libraries they end in, and which of the
project's functions hold them (inclusive), so a reader can say what bounds the figure."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")  # py-spy names a frame `function (path:line)`
_SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_BUILTIN_OF = re.compile(r"of '([A-Za-z0-9_]+)\.")  # cProfile's `<method 'decode' of 'msgspec.json.Decoder' objects>`
TOP = 6


def _frame(text: str) -> str:
    return _LINE.sub(")", text.strip())


def owner(frame: str) -> str:
    """The library a frame's code belongs to: `xpbank`, a site package, or `python` (the
    interpreter and its standard library: asyncio's loop, imports)."""
    if "xpbank/" in frame:
        return "xpbank"
    site = _SITE.search(frame) or _BUILTIN_OF.search(frame)
    return site.group(1) if site else "python"


def collapsed(path: Path) -> dict:
    """A py-spy `--format raw` file as a summary (None samples: the file is empty)."""
    leaves: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        n = int(count)
        total += n
        leaves[frames[-1]] += n
        for frame in set(frames):
            if "xpbank/" in frame:
                inclusive[frame] += n
    return _summary(total, leaves, inclusive)


def _summary(total: int, leaves: Counter, inclusive: Counter) -> dict:
    if not total:
        return {"samples": 0}
    by_owner: Counter = Counter()
    for frame, n in leaves.items():
        by_owner[owner(frame)] += n
    share = lambda counter: [(name, round(100 * n / total, 1)) for name, n in counter.most_common(TOP)]  # noqa: E731
    return {"samples": total, "self": share(leaves), "libraries": share(by_owner), "xpbank_inclusive": share(inclusive)}


def cprofile(stats) -> dict:
    """A pstats.Stats as the same summary (self time by function; inclusive for xpbank's)."""
    leaves: Counter = Counter()
    inclusive: Counter = Counter()
    for (file, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
        frame = f"{name} ({file})" if file != "~" else name
        leaves[frame] += round(tottime * 1e6)
        if "xpbank/" in file:
            inclusive[frame] += round(cumtime * 1e6)
    total = sum(leaves.values())
    return _summary(total, leaves, inclusive)


def short(frame: str) -> str:
    """`function (…/site-packages/x/y.py)` as `function (x/y.py)`."""
    frame = re.sub(r"\(.*?site-packages/", "(", frame)
    return re.sub(r"\(.*?/src/xpbank/", "(xpbank/", frame)


def describe(summary: dict | None) -> str:
    """One markdown paragraph of a summary."""
    if not summary or not summary.get("samples"):
        return "no profile (py-spy missing, or not one sample)"
    pct = lambda pairs: ", ".join(f"{short(name)} {p}%" for name, p in pairs)  # noqa: E731
    return (f"time ends in: {pct(summary['libraries'])}. Self time: {pct(summary['self'])}. "
            f"Inside xpbank (inclusive): {pct(summary['xpbank_inclusive']) or '-'}")
