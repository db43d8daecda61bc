#!/bin/bash
# Interleaved rounds: main's harness, this branch's harness and (W8A8) ORT on one thread, per shape.
# Usage: HMAIN=... HNEW=... rounds.sh ROUNDS MODE "M N K" ...
R=$1; MODE=$2; shift 2
ort() { nice -n 19 python3 benchmarks/cpu6-harness/ort1.py ${1}x${2}x${3} 7; }
for r in $(seq $R); do for s in "$@"; do
  echo "round $r main $(nice -n 19 $HMAIN $MODE $s 9)"
  echo "round $r new  $(nice -n 19 $HNEW $MODE $s 9)"
  if [ "$MODE" = w8a8 ] && [ -z "$NOORT" ]; then echo "round $r $(ort $s)"; fi
done; done
