"""Text Statistics: word frequencies through the textstats helper package in this directory."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from textstats.frequency import most_common
from textstats.tokenize import words


def main() -> int:
    input_file, params_file = sys.argv[1], sys.argv[2]
    with open(params_file, encoding="utf-8") as stream:
        params = json.load(stream)
    if params["top"] < 1:
        print("top must be at least 1", file=sys.stderr)
        return 2
    with open(input_file, encoding="utf-8", errors="replace") as stream:
        tokens = words(stream.read(), params["min_length"], params["case_sensitive"])
    print(json.dumps({"tokens": len(tokens), "distinct": len(set(tokens)), "top": most_common(tokens, params["top"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
