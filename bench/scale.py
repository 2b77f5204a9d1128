#!/usr/bin/env python
"""Out-of-core measurement: ``truecount.count`` over a ``bench/bigdata.py`` data set.

Why a separate script: ``bench/run.py`` compares implementations on the realistic demo data at
tens of millions of events; this one asks only whether the count finishes within its memory
budget at hundreds of millions to a billion events, how long it takes, how much it spilled, and
whether it equals the truth the generator derived from its parameters. The count runs in a
fresh child process so that its peak RSS (``VmHWM``) is its own.

Usage::

    TRUECOUNT_MEMORY_LIMIT=2GB .venv/bin/python bench/scale.py bench/data/big-100M
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "resolved_ticket.yaml"


def _peak_rss_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _dir_bytes(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size
        except OSError:  # a spill file removed while we looked
            continue
    return total


def child(folder: Path) -> None:
    """Count, then print one JSON line: wall, CPU, peak RSS, spilled bytes, pieces, periods."""
    from truecount.definition.load import load_definition
    from truecount.engine.run import count_source, partitions_for
    from truecount.engine.source import open_events

    files = sorted(str(p) for p in folder.glob("events-*.parquet"))
    wall, cpu = time.perf_counter(), time.process_time()
    source = open_events(files)
    pieces = partitions_for(source)
    result = count_source(load_definition(DEFINITION), source)
    spilled = result.con.execute("SELECT sum(size) FROM duckdb_temporary_files()").fetchall()
    print(
        json.dumps(
            {
                "wall_s": round(time.perf_counter() - wall, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "peak_rss_mb": _peak_rss_mb(),
                "temp_bytes_at_end": int(spilled[0][0] or 0) if spilled else 0,
                "pieces": pieces,
                "memory_limit": result.con.execute(
                    "SELECT current_setting('memory_limit')"
                ).fetchall()[0][0],
                "periods": {
                    p.period: {
                        "candidates": p.candidates,
                        "counted": p.counted,
                        "not_counted": p.not_counted,
                        "pending": p.pending,
                    }
                    for p in result.periods
                },
            }
        )
    )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
        return 0
    folder = Path(sys.argv[1])
    manifest = json.loads((folder / "manifest.json").read_text())
    temp = folder / "spill"
    temp.mkdir(exist_ok=True)
    env = os.environ.copy() | {"TRUECOUNT_TEMP_DIRECTORY": str(temp)}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    peak_temp = 0
    while proc.poll() is None:  # the temporary directory's high-water mark, once a second
        peak_temp = max(peak_temp, _dir_bytes(temp))
        time.sleep(1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        print(err, file=sys.stderr)
        return proc.returncode
    got = json.loads(out.strip().splitlines()[-1])
    got["peak_temp_mb"] = round(peak_temp / 1e6)
    agree = got["periods"] == manifest["truth"]
    report = {k: v for k, v in got.items() if k != "periods"}
    report |= {"events": manifest["events"], "tickets": manifest["tickets"], "truth": agree}
    print(json.dumps(report))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
