#include "CKernels.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t ck_xgetbv(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t ck_cpu_features(void) {
    unsigned a, b, c, d;
    uint32_t bits = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1;
    if (!osxsave) return 0;
    uint64_t xcr0 = ck_xgetbv();
    int ymm = (xcr0 & 0x6) == 0x6;
    int zmm = (xcr0 & 0xE6) == 0xE6;
    if (ymm && ((c >> 12) & 1)) bits |= CK_CPU_FMA;
    if (ymm && ((c >> 29) & 1)) bits |= CK_CPU_F16C;
    if (__get_cpuid_max(0, 0) < 7) return bits;
    __cpuid_count(7, 0, a, b, c, d);
    if (ymm && ((b >> 5) & 1)) bits |= CK_CPU_AVX2;
    if (zmm && ((b >> 16) & 1)) bits |= CK_CPU_AVX512F;
    if (zmm && ((b >> 30) & 1)) bits |= CK_CPU_AVX512BW;
    if (zmm && ((b >> 31) & 1)) bits |= CK_CPU_AVX512VL;
    if (zmm && ((c >> 11) & 1)) bits |= CK_CPU_AVX512VNNI;
    __cpuid_count(7, 1, a, b, c, d);
    if (ymm && ((a >> 4) & 1)) bits |= CK_CPU_AVXVNNI;
    return bits;
}
#else
uint32_t ck_cpu_features(void) { return 0; }
#endif
