// The vector row kernels of dense_ops.c, written once for any vector width. dense_ops.c includes
// this file once per width (no include guard, on purpose) after defining:
//   SIMD_TARGET          the target attribute of the functions (CK_AVX2, CK_AVX512)
//   SIMD_NAME(name)      the name of a function for this width (exp_avx2, exp_avx512, ...)
//   vf, VLANES           the vector type and its float count
//   v_load, v_store, v_set1, v_zero, v_add, v_sub, v_mul, v_div, v_fma(a, b, c) = a * b + c,
//   v_min, v_max        (the second operand when either is NaN, as minps / maxps),
//   v_round              to nearest even, v_abs, v_neg, v_copysign(magnitude, sign),
//   v_pow2(n)            2^n for whole floats n in [-127, 128] by building the exponent bits,
//   v_zero_below(y, x, lo)  y where x >= lo or x is NaN, +0 where x < lo,
//   v_hsum, v_hmax       horizontal sum and maximum (an order of their own per width),
//   v_load_tail(p, n, fill), v_store_tail(p, v, n)  the first n < VLANES lanes only (the others
//                        `fill` when loading; nothing past p + n is read or written).
// The file undefines these parameters at its end, so the next instantiation starts clean.
// Every lane does the operations of the scalar definitions in dense_ops.c (exp_scalar, erf_scalar,
// ck_gelu_scalar) in the same order, so elementwise results are bit-identical on every width and
// to the portable path; sums over a row (layer norm, softmax, L2) are added in a per-width order.

SIMD_TARGET static inline vf SIMD_NAME(exp)(vf x) {
    vf v = v_min(v_set1(EXP_HI), x); // NaN in x stays NaN (second operand)
    vf n = v_round(v_mul(v, v_set1(LOG2E)));
    vf r = v_fma(n, v_set1(-LN2_HI), v);
    r = v_fma(n, v_set1(-LN2_LO), r);
    vf p = v_fma(v_set1(EP0), r, v_set1(EP1));
    p = v_fma(p, r, v_set1(EP2));
    p = v_fma(p, r, v_set1(EP3));
    p = v_fma(p, r, v_set1(EP4));
    p = v_fma(p, r, v_set1(EP5));
    vf r2 = v_mul(r, r);
    vf y = v_add(v_fma(p, r2, r), v_set1(1.0f));
    y = v_mul(y, v_pow2(n));
    return v_zero_below(y, x, v_set1(EXP_LO));
}

SIMD_TARGET static inline vf SIMD_NAME(erf)(vf x) {
    const vf one = v_set1(1.0f);
    vf t = v_div(one, v_fma(v_set1(ERF_P), v_abs(x), one));
    vf r = v_fma(v_set1(ERF_A5), t, v_set1(ERF_A4));
    r = v_fma(r, t, v_set1(ERF_A3));
    r = v_fma(r, t, v_set1(ERF_A2));
    r = v_fma(r, t, v_set1(ERF_A1));
    vf e = SIMD_NAME(exp)(v_neg(v_mul(x, x)));
    vf y = v_fma(v_neg(v_mul(e, t)), r, one);
    return v_copysign(y, x);
}

SIMD_TARGET static inline vf SIMD_NAME(gelu)(vf x, int tanh_form) {
    const vf half = v_set1(0.5f), one = v_set1(1.0f);
    vf g;
    if (tanh_form) {
        vf k = v_mul(v_mul(v_set1(GELU_TANH_K), x), x);
        vf inner = v_mul(v_set1(GELU_TANH_C), v_fma(k, x, x));
        vf e = SIMD_NAME(exp)(v_add(inner, inner));
        g = v_sub(one, v_div(v_set1(2.0f), v_add(e, one)));
    } else {
        g = SIMD_NAME(erf)(v_mul(x, v_set1(GELU_RSQRT2)));
    }
    return v_mul(v_mul(half, x), v_add(one, g));
}

SIMD_TARGET static void SIMD_NAME(layer_norm_row)(const float *x, int64_t n, const float *w, const float *b,
                                                  float eps, float *y) {
    vf acc = v_zero();
    int64_t i = 0;
    for (; i + VLANES <= n; i += VLANES) acc = v_add(acc, v_load(x + i));
    float sum = v_hsum(acc);
    for (; i < n; i++) sum += x[i];
    const float mean = sum / (float)n;
    const vf vmean = v_set1(mean);
    acc = v_zero();
    for (i = 0; i + VLANES <= n; i += VLANES) {
        vf d = v_sub(v_load(x + i), vmean);
        acc = v_fma(d, d, acc);
    }
    float squares = v_hsum(acc);
    for (; i < n; i++) {
        float d = x[i] - mean;
        squares = fmaf(d, d, squares);
    }
    const float rstd = 1.0f / sqrtf(squares / (float)n + eps);
    const vf vrstd = v_set1(rstd), ones = v_set1(1.0f), zeros = v_zero();
    for (i = 0; i + VLANES <= n; i += VLANES) {
        vf v = v_mul(v_sub(v_load(x + i), vmean), vrstd);
        vf vw = w ? v_load(w + i) : ones;
        vf vb = b ? v_load(b + i) : zeros;
        v_store(y + i, v_fma(v, vw, vb));
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = fmaf(v, w ? w[i] : 1.0f, b ? b[i] : 0.0f);
    }
}

// The tail of a row (fewer than VLANES values) goes through one masked vector too, its unused lanes
// -inf, so that they add nothing to the maximum and exp them to +0: a short row (attention over a few
// dozen tokens) would otherwise spend most of its time in the scalar exp.
SIMD_TARGET static void SIMD_NAME(softmax_row)(const float *x, const float *mask, int64_t n, float *y) {
    vf vmax = v_set1(-INFINITY);
    int64_t i = 0;
    for (; i + VLANES <= n; i += VLANES) {
        vf v = v_load(x + i);
        if (mask) v = v_add(v, v_load(mask + i));
        v_store(y + i, v);
        vmax = v_max(vmax, v);
    }
    const int tail = (int)(n - i);
    if (tail > 0) {
        vf v = v_load_tail(x + i, tail, -INFINITY);
        if (mask) v = v_add(v, v_load_tail(mask + i, tail, 0.0f));
        v_store_tail(y + i, v, tail);
        vmax = v_max(vmax, v);
    }
    const float m = v_hmax(vmax);
    if (m == -INFINITY) {
        memset(y, 0, (size_t)n * 4);
        return;
    }
    const vf vm = v_set1(m);
    vf acc = v_zero();
    for (i = 0; i + VLANES <= n; i += VLANES) {
        vf e = SIMD_NAME(exp)(v_sub(v_load(y + i), vm));
        v_store(y + i, e);
        acc = v_add(acc, e);
    }
    if (tail > 0) {
        vf e = SIMD_NAME(exp)(v_sub(v_load_tail(y + i, tail, -INFINITY), vm));
        v_store_tail(y + i, e, tail);
        acc = v_add(acc, e);
    }
    const vf vinv = v_set1(1.0f / v_hsum(acc));
    for (i = 0; i + VLANES <= n; i += VLANES) v_store(y + i, v_mul(v_load(y + i), vinv));
    if (tail > 0) v_store_tail(y + i, v_mul(v_load_tail(y + i, tail, 0.0f), vinv), tail);
}

SIMD_TARGET static void SIMD_NAME(elementwise)(int op, const float *a, const float *b, float factor, int64_t n,
                                               float *y) {
    int64_t i = 0;
    const vf f = v_set1(factor);
    for (; i + VLANES <= n; i += VLANES) {
        vf va = v_load(a + i), r;
        switch (op) {
        case CK_ELEMENTWISE_MULTIPLY: r = v_mul(va, v_load(b + i)); break;
        case CK_ELEMENTWISE_ADD: r = v_add(va, v_load(b + i)); break;
        case CK_ELEMENTWISE_SCALE: r = v_mul(va, f); break;
        case CK_ELEMENTWISE_GELU_ERF: r = SIMD_NAME(gelu)(va, 0); break;
        default: r = SIMD_NAME(gelu)(va, 1); break;
        }
        v_store(y + i, r);
    }
    elementwise_portable(op, a + i, b ? b + i : NULL, factor, n - i, y + i);
}

SIMD_TARGET static float SIMD_NAME(sum_squares)(const float *x, int64_t n) {
    vf acc = v_zero();
    int64_t i = 0;
    for (; i + VLANES <= n; i += VLANES) {
        vf v = v_load(x + i);
        acc = v_fma(v, v, acc);
    }
    float s = v_hsum(acc);
    for (; i < n; i++) s = fmaf(x[i], x[i], s);
    return s;
}

SIMD_TARGET static void SIMD_NAME(axpy)(float alpha, const float *x, float *acc, int64_t n) {
    const vf va = v_set1(alpha);
    int64_t i = 0;
    for (; i + VLANES <= n; i += VLANES) v_store(acc + i, v_fma(va, v_load(x + i), v_load(acc + i)));
    axpy_portable(alpha, x + i, acc + i, n - i);
}

SIMD_TARGET static void SIMD_NAME(divide)(const float *x, float d, int64_t n, float *y) {
    const vf vd = v_set1(d);
    int64_t i = 0;
    for (; i + VLANES <= n; i += VLANES) v_store(y + i, v_div(v_load(x + i), vd));
    divide_portable(x + i, d, n - i, y + i);
}

#undef SIMD_TARGET
#undef SIMD_NAME
#undef vf
#undef VLANES
#undef v_load
#undef v_store
#undef v_set1
#undef v_zero
#undef v_add
#undef v_sub
#undef v_mul
#undef v_div
#undef v_fma
#undef v_min
#undef v_max
#undef v_round
#undef v_abs
#undef v_neg
#undef v_copysign
#undef v_pow2
#undef v_zero_below
#undef v_hsum
#undef v_hmax
#undef v_load_tail
#undef v_store_tail
