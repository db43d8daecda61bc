#!/bin/bash
# Device call 3 (gpu9): the committed defaults against PDL off, full suite, broken-kernel check of the chained test.
R=/tmp/r; mkdir -p $R
exec > >(tee $R/log.txt) 2>&1
echo "tree $(pwd)"; date -u
mkdir -p /work && ln -sfn $PWD /work/wt-gpu9
G=$PWD/.gpu/gpu9
export QLINEAR_CUDA_KERNELS=$G/KernelSources QLINEAR_KERNEL_CACHE=/tmp/kc
tar xJf $G/bundle.tar.xz -C /tmp || exit 1
tar xJf $G/kcache.tar.xz -C /tmp
bench() { # $1 = QLINEAR_DECODE_PDL or "default", $2 = file tag
  if [ "$1" = default ]; then unset QLINEAR_DECODE_PDL; else export QLINEAR_DECODE_PDL=$1; fi
  timeout 100 /tmp/bundle/run qlinear bench-cuda --only linear --layer "first layer" --json $R/$2-$SECONDS.json \
    > $R/$2-$SECONDS.txt 2>&1; echo "bench $1 rc=$? t=$SECONDS"; unset QLINEAR_DECODE_PDL; }
for cfg in off default off default; do bench $cfg final3-$cfg; done
echo "=== broken kernel (no griddepcontrol.wait) t=$SECONDS"
QLINEAR_CUDA_KERNELS=$G/broken timeout 120 /tmp/bundle/run-tests --filter "decodeRightAfterItsProducer" > $R/broken.txt 2>&1
echo "broken rc=$?"; grep -cE "✘" $R/broken.txt; grep -E "✘" $R/broken.txt | head -12; tail -2 $R/broken.txt
echo "=== full suite t=$SECONDS"
timeout $((580 - SECONDS)) /tmp/bundle/run-tests > $R/suite.txt 2>&1; echo "suite rc=$? t=$SECONDS"
grep -E "decodeRightAfterItsProducer|CUDA decode" $R/suite.txt | tail -4; tail -2 $R/suite.txt; grep -E "✘" $R/suite.txt | head -20
echo "end t=$SECONDS"; date -u
sleep 1; tar cJf $OUT/results.tar.xz -C /tmp r
