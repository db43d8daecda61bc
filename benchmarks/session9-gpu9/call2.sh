#!/bin/bash
# Device call 2 (gpu9): prefetch sweep, per-kernel pick, final A/B, full suite and broken-kernel check with the pick.
R=/tmp/r; mkdir -p $R
exec > >(tee $R/log.txt) 2>&1
echo "tree $(pwd) $(git log -1 --oneline 2>/dev/null)"; date -u
mkdir -p /work && ln -sfn $PWD /work/wt-gpu9
G=$PWD/.gpu/gpu9
export QLINEAR_CUDA_KERNELS=$G/KernelSources QLINEAR_KERNEL_CACHE=/tmp/kc
tar xJf $G/bundle.tar.xz -C /tmp || exit 1
tar xJf $G/kcache.tar.xz -C /tmp
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv
bench() { # $1 = QLINEAR_DECODE_PDL, $2 = file tag
  QLINEAR_DECODE_PDL=$1 timeout 100 /tmp/bundle/run qlinear bench-cuda --only linear --layer "first layer" \
    --json $R/$2-$SECONDS.json > $R/$2-$SECONDS.txt 2>&1; echo "bench $1 ($2) rc=$? t=$SECONDS"; }
for pf in off 0 3 6 9 12 18 off 9; do bench $pf bench-sweep-$pf; done
PICK=$(python3 $G/pick.py $R 2> $R/pick.txt); cat $R/pick.txt; echo "PICK=$PICK"
for cfg in off "$PICK" off "$PICK"; do bench "$cfg" final-$( [ "$cfg" = off ] && echo off || echo pick); done
echo "=== suite with QLINEAR_DECODE_PDL=$PICK t=$SECONDS"
QLINEAR_DECODE_PDL="$PICK" timeout $((560 - SECONDS)) /tmp/bundle/run-tests > $R/suite.txt 2>&1; echo "suite rc=$? t=$SECONDS"
tail -2 $R/suite.txt; grep -E "✘" $R/suite.txt | head -20
echo "=== broken kernel (no griddepcontrol.wait) t=$SECONDS"
QLINEAR_DECODE_PDL="$PICK" QLINEAR_CUDA_KERNELS=$G/broken timeout $((590 - SECONDS)) /tmp/bundle/run-tests --filter "decodeRightAfterItsProducer" > $R/broken.txt 2>&1
echo "broken rc=$?"; grep -cE "✘" $R/broken.txt; grep -E "✘" $R/broken.txt | head -8; tail -2 $R/broken.txt
echo "end t=$SECONDS"; date -u
sleep 1; tar cJf $OUT/results.tar.xz -C /tmp r
