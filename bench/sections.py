"""Each benchmark owns one marked section of bench/RESULTS.md and replaces only that section."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path

from core.io import atomic_write_text


def cpu_name() -> str:
    """The CPU a table was measured on, in words ("AMD EPYC (2 cores)"): the first model name the
    system reports, else the architecture."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def command_line(script: str, argv: list[str] | None) -> str:
    """How to rerun this benchmark, for the section it writes (`argv` as main() got it, else sys.argv)."""
    args = shlex.join(argv if argv is not None else sys.argv[1:])
    return f".venv/bin/python -m bench.{Path(script).stem}" + (f" {args}" if args else "")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(path: str | Path, name: str, section: str) -> None:
    """`section` must start and end with `markers(name)`; other sections and text stay as they are."""
    path = Path(path)
    start, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def publish(text: str, *, command: str, section: str | None, out_md: str | Path | None, quick: bool = False) -> str:
    """Finish a report (smoke-run warning, the command that made it) and write it: into its marked
    section of `out_md` (bench/RESULTS.md by default) with `section`, else as the whole of `out_md`."""
    if quick:
        text += "\n**Quick smoke run: numbers are not for quoting.**\n"
    text += f"\nCommand: `{command}`\n"
    if section:
        start, end = markers(section)
        text = f"{start}\n{text}{end}\n"
        write_section(out_md or Path(__file__).resolve().parent / "RESULTS.md", section, text)
    else:
        atomic_write_text(out_md, text)
    return text
