"""Copies binaries out of a cargo build's JSON messages (`--message-format=json…` on stdin) into
a directory: `python3 scripts/test_binaries.py <dir> <binary>...`.

The test command's later steps (the deploy rehearsal, the browser test) take the binaries that
`cargo test --workspace` built instead of building their own: any other selection of packages
unifies other features and compiles everything above tokio again. The paths come from cargo's
messages (deps/<name>-<hash>) because target/debug/<name> may be another checkout's when the
target directory is shared. Fails naming any binary the build did not produce."""

import json
import os
import shutil
import sys


def main() -> int:
    destination, wanted = sys.argv[1], set(sys.argv[2:])
    found = set()
    for line in sys.stdin:
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        target = message["target"]
        if "bin" in target["kind"] and target["name"] in wanted and not message["profile"]["test"]:
            shutil.copy(message["executable"], os.path.join(destination, target["name"]))
            found.add(target["name"])
    missing = sorted(wanted - found)
    if missing:
        print(f"test_binaries.py: the build produced no binary {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
