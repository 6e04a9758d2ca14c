"""Threshold Filter: count, mean and maximum of a CSV column's values above a threshold; the rows kept (those
above it) are written to ``outputs/kept.csv``, for a pipeline's next step."""

import csv
import json
import os
import sys


def main() -> int:
    input_file, params_file = sys.argv[1], sys.argv[2]
    with open(params_file, encoding="utf-8") as stream:
        params = json.load(stream)
    threshold, column = params["threshold"], params["column"]
    if threshold < 0:
        print(f"threshold must be non-negative, got {threshold}", file=sys.stderr)
        return 2
    with open(input_file, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        if column not in (reader.fieldnames or []):
            print(f"column {column!r} not in {reader.fieldnames}", file=sys.stderr)
            return 3
        rows = list(reader)
    values = [float(row[column]) for row in rows]
    above = [v for v in values if v > threshold]
    os.makedirs("outputs", exist_ok=True)
    with open(os.path.join("outputs", "kept.csv"), "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=reader.fieldnames or [column])
        writer.writeheader()
        writer.writerows(row for row in rows if float(row[column]) > threshold)
    print(
        json.dumps(
            {
                "rows": len(values),
                "above": len(above),
                "mean_above": round(sum(above) / len(above), 6) if above else None,
                "max": max(values) if values else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
