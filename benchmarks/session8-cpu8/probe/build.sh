#!/bin/bash
# Builds the W8A8 timing probe against a tree's release objects (run from the tree's root, after
# `git apply benchmarks/session8-cpu8/probe/probelog.patch` and `swift build -c release --product qlinear`;
# revert the patch afterwards: it is a measuring aid, not library code; SWIFTFLAGS="-D NOPROBE" builds it
# without the patch, wall and CPU time only).
# Usage: probe M N K REPS [ROUNDS]; TRACE=1 prints the median timeline of the parallel regions of one call
# (region entry/exit, each thread's first part start, last part end, busy time, parts), CALLS=1 each call's
# parts ([thread:start-end] in us from the call's start; thread 0 = caller, 1.. = workers).
set -e
B=.build/release
grep -v "qlinear.build" $B/qlinear.product/Objects.LinkFileList | grep -v "QLModels\|QLNN" > /tmp/probe-objs.txt
swiftc -O $SWIFTFLAGS -parse-as-library "$(dirname "$0")/main.swift" -o ${1:-/tmp/probe} -I $B/Modules \
  -Xcc -fmodule-map-file=$B/CQLKernels.build/module.modulemap -Xcc -I -Xcc Sources/Backends/CPUKernels/include \
  $(cat /tmp/probe-objs.txt)
echo "built ${1:-/tmp/probe}"
