"""Time to recover from a failover drill, from probe.sh's lines (stdin or a file).

The outage runs from the first FAIL to the first ok after the last FAIL; its length is the
figure a drill records (docs/failover-drills.md). Prints one line; exits 1 when the probe
never failed (the drill did not reach the client) or never recovered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Outage:
    first_failure: datetime
    recovered: datetime
    failed_tries: int

    @property
    def seconds(self) -> float:
        return (self.recovered - self.first_failure).total_seconds()


def outage(lines: Iterable[str]) -> Outage | None:
    tries = []
    for line in lines:
        stamp, _, state = line.strip().partition(" ")
        if state in ("ok", "FAIL"):
            tries.append((datetime.fromisoformat(stamp.replace("Z", "+00:00")), state == "ok"))
    failures = [i for i, (_, ok) in enumerate(tries) if not ok]
    if not failures:
        return None
    after = [t for t, ok in tries[failures[-1] + 1 :] if ok]
    if not after:
        return None
    return Outage(first_failure=tries[failures[0]][0], recovered=after[0], failed_tries=len(failures))


def main() -> int:
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as log:
            found = outage(log)
    else:
        found = outage(sys.stdin)
    if found is None:
        print("no complete outage in the probe log (never failed, or never recovered)")
        return 1
    print(
        f"outage {found.seconds:.1f} s: first failure {found.first_failure.isoformat()}, "
        f"recovered {found.recovered.isoformat()}, {found.failed_tries} failed tries"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
