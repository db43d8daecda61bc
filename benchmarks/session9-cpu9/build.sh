#!/bin/bash
# Session 7 (dec7) A/B harness: build.sh OUT name1=DIR1[:cflags] name2=DIR2 ... builds one binary with
# each DIR's decoded_gemm.c, decoded_gemm_avx512.c and decoded_gemm.h (symbols renamed name_*) and this
# tree's other kernel files; run it as OUT wo|fp8 M N K ROUNDS (NOSGEMM=1: without OpenBLAS).
set -e
OUT=$1; shift
H=$(cd $(dirname $0) && pwd)
K=$H/../../Sources/Backends/CPUKernels
W=${TMPDIR:-/tmp}/ab-w-$$; rm -rf $W; mkdir -p $W
CC="clang -O3 -fno-math-errno -I$K/include -I$K"
objs=""; decl=""; tab=""
for f in $K/*.c; do b=$(basename $f .c); case $b in decoded_gemm*) continue;; esac; $CC -c $f -o $W/$b.o & objs="$objs $W/$b.o"; done
for v in "$@"; do
  n=${v%%=*}; rest=${v#*=}; d=${rest%%:*}; fl=""; [ "$rest" != "$d" ] && fl=${rest#*:}
  R="-Dck_decoded_gemm=${n}_gemm -Dck_decoded_gemm_pack_input=${n}_pack -Dck_decoded_gemm_pack_input_e4m3=${n}_pack8 -Dck_decoded_gemm_input_size=${n}_isize -Dck_decoded_chunk_avx512=${n}_chunk -Dck_decoded_decode_avx512=${n}_dec"
  mkdir -p $W/$n; cp $d/decoded_gemm.c $d/decoded_gemm_avx512.c $d/decoded_gemm.h $W/$n/
  for f in decoded_gemm decoded_gemm_avx512; do $CC $fl $R -c $W/$n/$f.c -o $W/${n}_$f.o & objs="$objs $W/${n}_$f.o"; done
  decl="$decl DECL($n)"; tab="$tab ENTRY($n),"
done
wait
$CC -DVARIANTS="$decl" -DTABLE="$tab" $H/ab.c $objs -lpthread -lm -ldl -o $OUT
rm -rf $W
echo built $OUT
