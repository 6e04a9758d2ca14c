#!/usr/bin/env bash
# Word Count (bash): $1 is the input file, $2 the parameters (JSON); prints one JSON object.
set -euo pipefail
input_file="$1"
params_file="$2"
unit=$(sed -n 's/.*"unit": *"\([a-z]*\)".*/\1/p' "$params_file")
case "$unit" in
  lines) flag=-l ;;
  words) flag=-w ;;
  bytes) flag=-c ;;
  *) echo "unknown unit '$unit'" >&2; exit 2 ;;
esac
count=$(wc "$flag" < "$input_file" | tr -d ' ')
printf '{"unit": "%s", "count": %s}\n' "$unit" "$count"
