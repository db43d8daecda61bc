#!/bin/bash
# ab2.sh ROUNDS "M N K" ... : base probe / new probe / ORT 2 threads, interleaved per shape, order rotating
R=$1; shift
for r in $(seq $R); do for s in "$@"; do
  m=${s%% *}
  reps=$(( m >= 1024 ? 7 : 150 ))
  b="base $(nice -n 19 /tmp/cpu8/bin/probe-base $s $reps 1)"
  n="new  $(nice -n 19 /tmp/cpu8/bin/probe-new $s $reps 1)"
  o="$(nice -n 19 python3 /tmp/cpu8/ort.py $s $reps 2 1)"
  echo "r$r load $(cut -d' ' -f1 /proc/loadavg) | $b"; echo "r$r | $n"; echo "r$r | $o"
done; done
