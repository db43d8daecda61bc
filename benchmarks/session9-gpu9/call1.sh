#!/bin/bash
# Device call 1 (gpu9): bench A/B of programmatic dependent launch, full suite, broken-kernel check, ncu of quant_rows.
R=/tmp/r; mkdir -p $R
exec > >(tee $R/log.txt) 2>&1
echo "tree $(pwd) branch $(git rev-parse --abbrev-ref HEAD 2>/dev/null) $(git log -1 --oneline 2>/dev/null)"; date -u
mkdir -p /work && ln -sfn $PWD /work/wt-gpu9
export QLINEAR_CUDA_KERNELS=$PWD/Sources/Backends/CUDA/KernelSources QLINEAR_KERNEL_CACHE=/tmp/kc
tar xJf .gpu/bundle.tar.xz -C /tmp || exit 1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv
for pdl in off 1 2 0 4 off 1; do
  echo "=== bench QLINEAR_DECODE_PDL=$pdl t=$SECONDS"
  QLINEAR_DECODE_PDL=$pdl timeout 120 /tmp/bundle/run qlinear bench-cuda --only linear --layer "first layer" \
    --json $R/bench-pdl-$pdl-$SECONDS.json 2>&1 | tee $R/bench-pdl-$pdl-$SECONDS.txt | grep -E "M = |copy|W8A8|FP8|weight-only|bf16" | head -40
  [ $SECONDS -gt 200 ] && break
done
echo "=== suite t=$SECONDS"
timeout $((520 - SECONDS)) /tmp/bundle/run-tests > $R/suite.txt 2>&1; echo "suite rc=$? t=$SECONDS"
tail -5 $R/suite.txt; grep -E "✘|failed|issue" $R/suite.txt | head -20
tar cJf $OUT/kcache.tar.xz -C /tmp kc
echo "=== broken kernel (no griddepcontrol.wait) t=$SECONDS"
QLINEAR_CUDA_KERNELS=$PWD/.gpu/broken/KernelSources timeout 60 /tmp/bundle/run-tests --filter "decodeRightAfterItsProducer" > $R/broken.txt 2>&1
echo "broken rc=$?"; grep -cE "✘" $R/broken.txt; tail -4 $R/broken.txt
if [ $SECONDS -lt 500 ]; then
  echo "=== ncu quant_rows t=$SECONDS"
  cd scripts/gpu && timeout $((570 - SECONDS)) ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy --section InstructionStats \
    --section SchedulerStats -k regex:quant_rows python3 membound_harness.py --sources ../../Sources/Backends/CUDA/KernelSources \
    --profile > $R/ncu-quant-rows.txt 2>&1; echo "ncu rc=$?"; cd ../..
fi
echo "end t=$SECONDS"; date -u
sleep 1; tar cJf $OUT/results.tar.xz -C /tmp r
