#!/bin/bash
# Session-4 (cpu4) C harnesses, as run for NOTES.md "Issue 11 goals 2-4, session 4". Run from the
# repository root with a pre-restructure worktree at $BEFORE (commit 8e109ab) for the old GEMVs.
# gemv_bench N K NKERNELS REPS: M = 1, 2 pthreads, weights rotated over > 1.2 GB, wall time;
#   kernels 0-4 = 8e109ab INT8 weight-only, current INT8 weight-only, 8e109ab FP8, current FP8, read
#   (vector max over the same bytes); 5-26 = the variants of extra.h (see its cases).
# hotm M: M = 1-16, one core, weight in L2, 8e109ab vs current GEMVs (build like gemv_bench, without -DEXTRA).
# gemm_bench N K M REPS (FP8=1 for e4m3 weights): one thread, thread CPU time, OpenBLAS sgemm (1 thread)
#   on the dequantized weight against each variant listed in VARIANTS (pack + GEMM), results checked.
set -e
BEFORE=${BEFORE:-/work/wt-before}
K=Sources/Backends/CPUKernels; H=benchmarks/cpu4-harness; O=${OUT:-/tmp/cpu4-harness}; mkdir -p $O
CC="clang -O3 -march=native -I$K/include -I$K"
for f in fp8_pertensor int8_blockwise; do
  cc -O3 -march=native -c -I$BEFORE/Sources/CKernels/include -I$BEFORE/Sources/CKernels \
    $BEFORE/Sources/CKernels/$f.c -o $O/${f}_before.o
done
syms=$(nm $O/fp8_pertensor_before.o $O/int8_blockwise_before.o | awk '$2=="T"{print $3}' | sort -u)
args=""; for s in $syms; do args="$args --redefine-sym $s=old_$s"; done
objcopy $args $O/fp8_pertensor_before.o $O/fp8_old.o; objcopy $args $O/int8_blockwise_before.o $O/i8_old.o
for f in fp8_pertensor int8_gemv_weight_only int8_dequantize ck_scratch; do $CC -c $K/$f.c -o $O/new_$f.o; done
$CC -DEXTRA -I$H $H/gemv_bench.c $O/fp8_old.o $O/i8_old.o $O/new_*.o -lpthread -lm -o $O/gemv_bench
# decoded GEMM: the pre-session-4 loop (BLIS orientation, 64 x 256: decoded_gemm.c as main had it at 17ae7b9,
# taken from git) against the current file
git show 17ae7b9:$K/decoded_gemm.c > $O/decoded_gemm_base.c
$CC -c -Dck_decoded_gemm=base_gemm -Dck_decoded_gemm_pack_input=base_pack -Dck_decoded_gemm_input_size=base_size \
  $O/decoded_gemm_base.c -o $O/v_base.o
$CC -c -Dck_decoded_gemm=cur_gemm -Dck_decoded_gemm_pack_input=cur_pack -Dck_decoded_gemm_input_size=cur_size \
  $K/decoded_gemm.c -o $O/v_cur.o
$CC -D'VARIANTS(X)=X(base) X(cur)' -D'VNAMES={"base","cur"}' $H/gemm_bench.c $O/v_base.o $O/v_cur.o \
  $O/new_*.o -lopenblas -lm -lpthread -o $O/gemm_bench
echo "built $O/gemv_bench $O/gemm_bench"
