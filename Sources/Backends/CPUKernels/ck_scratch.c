// Scratch buffers for the packed GEMMs, kept between calls (NOTES.md, "CPU kernels": the W8A8 GEMM is
// called several times per thread per product, four column ranges per core, and allocating its
// weight-panel buffer afresh each time costs page faults once the buffer is a fresh mapping:
// 1.8 MB at K = 14336). One process-wide pool: a thread gets back the buffer it used last when that one
// is free (still in its core's caches, as per-thread buffers were), else the most recently released
// one (a thread new to the pool, e.g. one of 8 callers taking turns on 2 cores, then reuses a warm
// buffer instead of bringing its own cold one into the rotation). At most CK_SCRATCH_POOL buffers of at
// most CK_SCRATCH_KEEP bytes are kept; the number in use at once is bounded by the compute threads (ComputeSlots).
#include "ck_internal.h"
#include <pthread.h>

#define CK_SCRATCH_POOL 64

typedef struct {
    void *base;
    size_t bytes;
    int busy;
    pthread_t user;  // the thread that used it last
} scratch_entry;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/// Entries [0, pool_count): free ones ordered by release, the most recent last; busy ones anywhere.
static scratch_entry pool[CK_SCRATCH_POOL];
static int pool_count;

void *ck_scratch_acquire(size_t bytes) {
    if (bytes > CK_SCRATCH_KEEP) return ck_alloc(bytes);
    pthread_mutex_lock(&pool_lock);
    int chosen = -1;
    const pthread_t self = pthread_self();
    for (int i = pool_count - 1; i >= 0 && chosen < 0; --i) {
        if (!pool[i].busy && pool[i].bytes >= bytes && pthread_equal(pool[i].user, self)) chosen = i;
    }
    for (int i = pool_count - 1; i >= 0 && chosen < 0; --i) {
        if (!pool[i].busy && pool[i].bytes >= bytes) chosen = i;
    }
    if (chosen < 0) {
        for (int i = pool_count - 1; i >= 0; --i) {
            if (!pool[i].busy) { chosen = i; break; }
        }
    }
    if (chosen < 0 && pool_count < CK_SCRATCH_POOL) chosen = pool_count++;
    if (chosen < 0) {
        pthread_mutex_unlock(&pool_lock);
        return ck_alloc(bytes);
    }
    // Grown under the lock: a release may move entries in the array.
    scratch_entry *entry = &pool[chosen];
    if (entry->bytes < bytes) {
        free(entry->base);
        entry->base = ck_alloc(bytes);
        entry->bytes = entry->base ? bytes : 0;
    }
    void *base = entry->base;
    entry->busy = base != NULL;
    entry->user = self;
    pthread_mutex_unlock(&pool_lock);
    return base;
}

void ck_scratch_release(void *buffer) {
    if (!buffer) return;
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < pool_count; ++i) {
        if (pool[i].busy && pool[i].base == buffer) {
            // Move it to the end: the most recently released free buffer is taken first.
            scratch_entry entry = pool[i];
            entry.busy = 0;
            for (int j = i; j < pool_count - 1; ++j) pool[j] = pool[j + 1];
            pool[pool_count - 1] = entry;
            pthread_mutex_unlock(&pool_lock);
            return;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    free(buffer);
}
