#!/bin/bash
# Device call 4 (gpu9): the chained-decode test against the broken kernel (no griddepcontrol.wait), then the decode suite.
R=/tmp/r; mkdir -p $R
exec > >(tee $R/log.txt) 2>&1
mkdir -p /work && ln -sfn $PWD /work/wt-gpu9
G=$PWD/.gpu/gpu9
export QLINEAR_KERNEL_CACHE=/tmp/kc
tar xJf $G/bundle.tar.xz -C /tmp || exit 1
tar xJf $G/kcache.tar.xz -C /tmp
echo "=== broken kernel (no griddepcontrol.wait) t=$SECONDS"
QLINEAR_CUDA_KERNELS=$G/broken timeout 150 /tmp/bundle/run-tests --filter "decodeRightAfterItsProducer" > $R/broken.txt 2>&1
echo "broken rc=$?"; grep -cE "✘" $R/broken.txt; grep -E "✘" $R/broken.txt | cut -c1-300 | head -12; tail -2 $R/broken.txt
echo "=== decode suite, correct kernels t=$SECONDS"
QLINEAR_CUDA_KERNELS=$G/KernelSources timeout 200 /tmp/bundle/run-tests --filter "CUDADecodeTests" > $R/decode.txt 2>&1
echo "decode rc=$?"; grep -E "✘" $R/decode.txt | head; tail -2 $R/decode.txt
echo "end t=$SECONDS"
sleep 1; tar cJf $OUT/results.tar.xz -C /tmp r
