#!/bin/bash
# Interleaved A/B: main's release binary vs cpu9's, M = 1 rows (decode), 3 rounds.
for r in 1 2 3; do
  for b in main cpu9; do
    echo "=== round $r $b $(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"
    nice -n 19 /work/scratch/cpu9/qlinear-$b bench --shapes 18432x3072,3072x3072,5120x5120 --m 1 --repeats 5 2>&1 | grep -E "bandwidth|x3072 |x5120 |sgemv|W8A8|weight-only"
  done
done
