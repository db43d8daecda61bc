// Stand-alone parity check of the INT8 W8A8 GEMM kernels (AVX2 and AVX-512 VNNI) against the
// portable kernel, for machines without a Swift toolchain (the GPU hosts, whose Xeons have VNNI).
// The Swift suite (CPUKernelINT8Tests) runs the same comparison wherever `swift test` runs.
//
//   clang -O3 -fno-math-errno -ISources/CKernels/include -ISources/CKernels \
//       Tests/CKernelsParity/vnni_parity.c Sources/CKernels/*.c -o vnni-parity -lm && ./vnni-parity
//
// Exit status 0 when every case is within 1e-6 relative L2 error of the portable kernel.
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static unsigned long long s=88172645463325252ull; static unsigned rnd(){s^=s<<13;s^=s>>7;s^=s<<17;return (unsigned)s;}
static int run(int64_t m,int64_t n,int64_t k,int64_t bk,int64_t bn,int path,int withbias,double*err){
  int64_t kb=(k+bk-1)/bk,nb=(n+bn-1)/bn;
  int8_t*x=malloc(m*k),*w=malloc(n*k); float*sx=malloc(m*kb*4),*sw=malloc(nb*kb*4),*b=malloc(n*4),*y0=malloc(m*n*4),*y1=malloc(m*n*4);
  for(int64_t i=0;i<m*k;i++)x[i]=(int8_t)(rnd()%255-127); for(int64_t i=0;i<n*k;i++)w[i]=(int8_t)(rnd()%255-127);
  for(int64_t i=0;i<m*kb;i++)sx[i]=(rnd()%1000+1)*1e-4f; for(int64_t i=0;i<nb*kb;i++)sw[i]=(rnd()%1000+1)*1e-4f; for(int64_t i=0;i<n;i++)b[i]=(rnd()%100)*0.01f;
  ck_i8_gemm_args a={m,n,k,bk,bn,x,sx,0,0,w,sw,withbias?b:0,y0,0};
  ck_i8_gemm(&a,0,n,0);
  int64_t rows,rb; ck_i8_packed_activation_size(m,k,bk,path,&rows,&rb);
  void*ap=aligned_alloc(64,(rows*rb+63)/64*64+64); float*sxp=malloc(rows*kb*4+4);
  ck_i8_pack_activation(x,sx,m,k,bk,path,0,rows,ap,sxp); a.apack=ap; a.sxpack=sxp; a.out=y1;
  int64_t g=ck_i8_gemm_column_granule(path); int64_t mid=(n/2)/g*g;
  ck_i8_gemm(&a,0,mid,path); ck_i8_gemm(&a,mid,n,path);
  double d=0,nn=0; for(int64_t i=0;i<m*n;i++){d+=(y1[i]-y0[i])*(double)(y1[i]-y0[i]); nn+=y0[i]*(double)y0[i];}
  *err=sqrt(d/(nn>0?nn:1));
  free(x);free(w);free(sx);free(sw);free(b);free(y0);free(y1);free(ap);free(sxp); return *err<=1e-6;
}
int main(){
  unsigned f=ck_cpu_features(); printf("features 0x%x: avx2=%d avx512f=%d bw=%d vl=%d vnni=%d\n",f,!!(f&CK_CPU_AVX2),!!(f&CK_CPU_AVX512F),!!(f&CK_CPU_AVX512BW),!!(f&CK_CPU_AVX512VL),!!(f&CK_CPU_AVX512VNNI));
  int paths[2]={CK_PATH_AVX2,CK_PATH_AVX512VNNI}; int fails=0,total=0;
  int64_t shapes[][3]={{1,45,300},{3,70,129},{17,37,257},{18,70,200},{40,33,96},{2,130,150},{9,100,1000},{64,96,513}};
  int64_t blocks[][2]={{32,32},{48,48},{64,64},{128,128},{256,256},{7,5},{128,16},{33,64}};
  for(int p=0;p<2;p++){ if(paths[p]==CK_PATH_AVX512VNNI && !(f&CK_CPU_AVX512VNNI && f&CK_CPU_AVX512BW)) {printf("VNNI: not supported here, skipped\n"); continue;}
   double worst=0;
   for(int si=0;si<8;si++) for(int bi=0;bi<8;bi++) for(int wb=0;wb<2;wb++){ double e; total++; if(!run(shapes[si][0],shapes[si][1],shapes[si][2],blocks[bi][0],blocks[bi][1],paths[p],wb,&e)){fails++; printf("FAIL path %d m=%ld n=%ld k=%ld bk=%ld bn=%ld err %.3g\n",paths[p],shapes[si][0],shapes[si][1],shapes[si][2],blocks[bi][0],blocks[bi][1],e);} if(e>worst)worst=e;}
   printf("path %d: worst relative L2 error vs portable %.3g\n",paths[p],worst);
   // speed, one thread, 1024x3072x3072
   int64_t m=1024,n=3072,k=3072; int8_t*x=malloc(m*k),*w=malloc(n*k); float*sx=malloc(m*24*4),*sw=malloc(24*24*4),*y=malloc(m*n*4);
   for(int64_t i=0;i<m*k;i++)x[i]=(int8_t)(rnd()%255-127); for(int64_t i=0;i<n*k;i++)w[i]=(int8_t)(rnd()%255-127); for(int i=0;i<m*24;i++)sx[i]=1e-3f; for(int i=0;i<576;i++)sw[i]=1e-3f;
   int64_t rows,rb; ck_i8_packed_activation_size(m,k,128,paths[p],&rows,&rb); void*ap=aligned_alloc(64,rows*rb); float*sxp=malloc(rows*24*4);
   ck_i8_pack_activation(x,sx,m,k,128,paths[p],0,rows,ap,sxp); ck_i8_gemm_args a={m,n,k,128,128,x,sx,ap,sxp,w,sw,0,y,0};
   double best=1e9; for(int r=0;r<3;r++){double t=now(); ck_i8_gemm(&a,0,n,paths[p]); t=now()-t; if(t<best)best=t;}
   printf("path %d: 1024x3072x3072 one thread %.1f ms, %.1f GOP/s\n",paths[p],best*1e3,2.0*m*n*k/best/1e9);
  }
  printf("%d/%d parity cases passed\n",total-fails,total); return fails!=0;
}
