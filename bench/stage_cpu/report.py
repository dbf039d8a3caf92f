"""Sum what the stage-CPU probe (``bench/stage_cpu/sitecustomize.py``) wrote, and print it by task.

.venv/bin/python bench/stage_cpu/report.py /tmp/stages
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    """Print messages, CPU seconds, CPU per message and share of each task, all worker processes together."""
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for path in Path(folder).glob("*.json"):
        for name, (messages, cpu_s) in json.loads(path.read_text()).items():
            totals[name][0] += messages
            totals[name][1] += cpu_s
    everything = sum(cpu for _, cpu in totals.values()) or 1.0
    print(f"{'task':<16} {'messages':>9} {'cpu s':>7} {'ms/msg':>7} {'share':>6}")
    for name, (messages, cpu_s) in sorted(totals.items(), key=lambda item: -item[1][1]):
        print(f"{name:<16} {int(messages):>9} {cpu_s:>7.2f} {cpu_s / messages * 1000:>7.2f} {cpu_s / everything:>6.1%}")
    print(f"{'all tasks':<16} {'':>9} {everything:>7.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/stages")
