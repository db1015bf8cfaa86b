"""One registry operation in a process that SIGKILLs itself just before its Nth store write (0: never), for
the crash tests. Prints the number of writes the operation made when it is not killed.

    python tests/crash/registry_step.py REGISTRY_URL OPERATION KILL_AT ARTIFACT_DIR
"""

import os
import signal
import sys
from pathlib import Path

from registry.registry import Registry

PASSING = {"policy": "t", "passed": True, "rules": []}


def main(url: str, operation: str, kill_at: int, artifact: Path) -> None:
    registry = Registry.from_url(url)
    store, writes = registry.store, [0]

    def dying(write):
        def wrapper(*args, **kwargs):
            writes[0] += 1
            if writes[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return write(*args, **kwargs)
        return wrapper

    store.put_bytes, store.put_file = dying(store.put_bytes), dying(store.put_file)
    if operation == "register":
        registry.register("m", artifact, gate=PASSING, reason="crash test")
    elif operation == "promote":
        registry.promote("m", 2, reason="crash test")
    elif operation == "rollback":
        registry.rollback("m", reason="crash test")
    else:
        raise SystemExit(f"unknown operation {operation}")
    print(writes[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
