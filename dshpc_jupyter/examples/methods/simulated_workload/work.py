"""Simulated Workload: hold memory_mb of memory for `seconds`, then exit with exit_code."""

import json
import sys
import time


def main() -> int:
    with open(sys.argv[2], encoding="utf-8") as stream:
        params = json.load(stream)
    block = bytearray(params["memory_mb"] << 20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1  # touch every page so the memory is really resident
    time.sleep(params["seconds"])
    if params["exit_code"]:
        print(f"failing on purpose with exit code {params['exit_code']}", file=sys.stderr)
    print(json.dumps({"seconds": params["seconds"], "memory_mb": params["memory_mb"]}))
    return int(params["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
