// Scratch buffers for the packed GEMMs, kept between calls (NOTES.md, "CPU kernels": the W8A8 GEMM is
// called several times per thread per product, four column ranges per core, and allocating its
// weight-panel buffer afresh each time costs page faults once the buffer is a fresh mapping:
// 1.8 MB at K = 14336). One process-wide pool, most recently released first: the buffer a part gets is
// the one the previous part on any thread gave back, still in the caches. (Per-thread buffers, the
// first version, gave every calling thread its own cold buffer: with 8 callers taking turns on 2 cores,
// 8 panels rotated through the caches.) At most CK_SCRATCH_POOL buffers of at most CK_SCRATCH_KEEP
// bytes are kept; the number in use at once is bounded by the compute threads (ComputeSlots).
#include "ck_internal.h"
#include <pthread.h>

#define CK_SCRATCH_POOL 64

typedef struct {
    void *base;
    size_t bytes;
    int busy;
} scratch_entry;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/// Entries [0, pool_count): free ones ordered by release, the most recent last; busy ones anywhere.
static scratch_entry pool[CK_SCRATCH_POOL];
static int pool_count;

void *ck_scratch_acquire(size_t bytes) {
    if (bytes > CK_SCRATCH_KEEP) return ck_alloc(bytes);
    pthread_mutex_lock(&pool_lock);
    int chosen = -1;
    for (int i = pool_count - 1; i >= 0; --i) {
        if (!pool[i].busy && pool[i].bytes >= bytes) { chosen = i; break; }
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
