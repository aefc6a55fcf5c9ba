// The target attribute of each ISA level (cpu.h): the one place that says which extensions a
// level's kernels may use; the detection in cpu.cpp checks the same set. The avx2 level is the
// release build's baseline (x86-64-v3), so its attribute only matters in files meant to build at
// any x86-64 baseline. Internal to kernels/.
#pragma once

#define QF_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

#define QF_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define QF_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define QF_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16")))
