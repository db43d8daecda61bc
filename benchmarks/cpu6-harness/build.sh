#!/bin/bash
# Builds the cpu6 harness against the kernel sources of tree $1 (default: this tree) into $2.
set -e
T=${1:-.}; O=${2:-/tmp/cpu6-harness}; K=$T/Sources/Backends/CPUKernels
mkdir -p $O/obj-$$
CC="clang -O3 -fno-math-errno -I$K/include -I$K"
objs=""
for f in $K/*.c; do $CC -c $f -o $O/obj-$$/$(basename $f .c).o & objs="$objs $O/obj-$$/$(basename $f .c).o"; done
for j in $(jobs -p); do wait $j || exit 1; done
$CC benchmarks/cpu6-harness/harness.c $objs -lpthread -lm -ldl -o $O/harness
rm -rf $O/obj-$$
echo "built $O/harness"
