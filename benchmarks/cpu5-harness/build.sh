#!/bin/bash
# Builds the cpu5 harness (harness.c) statically, for a host with AVX-512 and AMX (run it there; this
# build machine may lack both): the kernel sources of this tree, main's AMX kernel renamed old_gemm_amx
# (git show $BASE:.../int8_gemm_amx.c, BASE = main's commit before this branch).
set -e
K=Sources/Backends/CPUKernels; H=benchmarks/cpu5-harness; O=${O:-/tmp/cpu5-harness}; BASE=${BASE:-eade934}
mkdir -p $O
CC="clang -O3 -fno-math-errno -I$K/include -I$K"
git show $BASE:$K/int8_gemm_amx.c > $O/old_amx.c
$CC -Dck_gemm_amx=old_gemm_amx -Dck_amx_request_permission=old_amx_request_permission -c $O/old_amx.c -o $O/old_amx.o
objs=""
for f in $K/*.c; do $CC -c $f -o $O/$(basename $f .c).o; objs="$objs $O/$(basename $f .c).o"; done
# the decoded-panel GEMM with float tiles of at most 512 rows (MC_MAX 2048 in the tree) as mc512_gemm
mkdir -p $O/mc512
sed 's/MC_MAX = 2048/MC_MAX = 512/' $K/decoded_gemm.h > $O/mc512/decoded_gemm.h
grep -q "MC_MAX = 512" $O/mc512/decoded_gemm.h
cp $K/decoded_gemm.c $O/mc512/
$CC -I$O/mc512 -Dck_decoded_gemm=mc512_gemm -Dck_decoded_gemm_pack_input=mc512_pack \
  -Dck_decoded_gemm_input_size=mc512_size -c $O/mc512/decoded_gemm.c \
  -o $O/mc512/mc512.o
$CC -static $H/harness.c $objs $O/old_amx.o $O/mc512/mc512.o -lpthread -lm -o $O/harness
echo "built $O/harness"
