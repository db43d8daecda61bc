#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define R12(OP) OP " %%zmm30, %%zmm31, %%zmm0\n" OP " %%zmm30, %%zmm31, %%zmm1\n" OP " %%zmm30, %%zmm31, %%zmm2\n" OP " %%zmm30, %%zmm31, %%zmm3\n" OP " %%zmm30, %%zmm31, %%zmm4\n" OP " %%zmm30, %%zmm31, %%zmm5\n" OP " %%zmm30, %%zmm31, %%zmm6\n" OP " %%zmm30, %%zmm31, %%zmm7\n" OP " %%zmm30, %%zmm31, %%zmm8\n" OP " %%zmm30, %%zmm31, %%zmm9\n" OP " %%zmm30, %%zmm31, %%zmm10\n" OP " %%zmm30, %%zmm31, %%zmm11\n"
#define R12B(OP) OP " %%zmm30, %%zmm31, %%zmm12\n" OP " %%zmm30, %%zmm31, %%zmm13\n" OP " %%zmm30, %%zmm31, %%zmm14\n" OP " %%zmm30, %%zmm31, %%zmm15\n" OP " %%zmm30, %%zmm31, %%zmm16\n" OP " %%zmm30, %%zmm31, %%zmm17\n" OP " %%zmm30, %%zmm31, %%zmm18\n" OP " %%zmm30, %%zmm31, %%zmm19\n" OP " %%zmm30, %%zmm31, %%zmm20\n" OP " %%zmm30, %%zmm31, %%zmm21\n" OP " %%zmm30, %%zmm31, %%zmm22\n" OP " %%zmm30, %%zmm31, %%zmm23\n"
int main(){
  long N=100000000;
  for(int rep=0;rep<3;rep++){
  double t0=now();
  __asm__ volatile("vpxord %%zmm30,%%zmm30,%%zmm30\n vpxord %%zmm31,%%zmm31,%%zmm31\n mov %0, %%rcx\n1:\n" R12("vfmadd231ps") "dec %%rcx\n jnz 1b\n" :: "r"(N/12*1) : "rcx","memory");
  double t1=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" R12("vdpbf16ps") R12B("vdpbf16ps") "dec %%rcx\n jnz 1b\n" :: "r"(N/24*1) : "rcx","memory");
  double t2=now();
  printf("fma %.2f G/s  dpbf16 %.2f G/s\n", N/(t1-t0)/1e9, N/(t2-t1)/1e9);}
}
