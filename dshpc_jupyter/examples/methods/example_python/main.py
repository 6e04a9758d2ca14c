"""Example Python Method: argv is input_file params_file; prints one JSON object."""

import json
import sys

PREVIEW = 200


def main() -> int:
    input_file, params_file = sys.argv[1], sys.argv[2]
    with open(params_file, encoding="utf-8") as stream:
        params = json.load(stream)
    with open(input_file, encoding="utf-8", errors="replace") as stream:
        text = stream.read()
    result = text.upper() if params["uppercase"] else text
    result = params["prefix"] + result
    print(
        json.dumps(
            {
                "result": result[:PREVIEW],
                "truncated": len(result) > PREVIEW,
                "lines": text.count("\n") + (0 if text.endswith("\n") or not text else 1),
                "words": len(text.split()),
                "characters": len(text),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
