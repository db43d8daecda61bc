#!/bin/bash
# build.sh OUT name1=dir1[:cflags] name2=dir2 ... : one binary, each variant's decoded_gemm*.c renamed.
set -e
OUT=$1; shift
K=/work/wt-dec7/Sources/Backends/CPUKernels
W=/tmp/dec7-ab/w; rm -rf $W; mkdir -p $W
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
$CC -DVARIANTS="$decl" -DTABLE="$tab" /tmp/dec7-ab/ab.c $objs -lpthread -lm -ldl -o $OUT
echo built $OUT
