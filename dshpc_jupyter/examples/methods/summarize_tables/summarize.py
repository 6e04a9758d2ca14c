"""Summarize Tables: rows per table and the mean of one column over every row of every table (the fan-in step of
a pipeline: its ``tables`` input is one array of files)."""

import csv
import json
import sys


def main() -> int:
    inputs_file, params_file = sys.argv[1], sys.argv[2]
    with open(inputs_file, encoding="utf-8") as stream:
        tables = json.load(stream)["tables"]
    with open(params_file, encoding="utf-8") as stream:
        column = json.load(stream)["column"]
    rows, values = [], []
    for path in tables:
        with open(path, newline="", encoding="utf-8") as stream:
            read = [float(row[column]) for row in csv.DictReader(stream)]
        rows.append(len(read))
        values.extend(read)
    mean = round(sum(values) / len(values), 6) if values else None
    print(json.dumps({"tables": len(tables), "rows": rows, "total_rows": len(values), "mean": mean}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
