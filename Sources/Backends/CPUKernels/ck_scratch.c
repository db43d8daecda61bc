// Per-thread scratch buffers for the packed GEMMs (NOTES.md, "CPU kernels": the W8A8 GEMM is
// called several times per thread per product, four column ranges per core, and allocating its
// weight-panel buffer afresh each time costs page faults once the buffer is a fresh mapping:
// 1.8 MB at K = 14336).
#include "ck_internal.h"
#include <pthread.h>

/// The calling thread's kept buffer: at most CK_SCRATCH_KEEP bytes, freed when the thread exits.
typedef struct {
    void *base;
    size_t bytes;
    int busy;
} scratch_slot;

static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static int slot_key_ok;

static void slot_free(void *value) {
    scratch_slot *slot = value;
    free(slot->base);
    free(slot);
}

static void slot_key_create(void) { slot_key_ok = pthread_key_create(&slot_key, slot_free) == 0; }

static scratch_slot *current_slot(void) {
    pthread_once(&slot_once, slot_key_create);
    if (!slot_key_ok) return NULL;
    scratch_slot *slot = pthread_getspecific(slot_key);
    if (!slot) {
        slot = calloc(1, sizeof *slot);
        if (slot && pthread_setspecific(slot_key, slot) != 0) {
            free(slot);
            slot = NULL;
        }
    }
    return slot;
}

void *ck_scratch_acquire(size_t bytes) {
    scratch_slot *slot = bytes <= CK_SCRATCH_KEEP ? current_slot() : NULL;
    if (!slot || slot->busy) return ck_alloc(bytes);
    if (slot->bytes < bytes) {
        free(slot->base);
        slot->base = ck_alloc(bytes);
        slot->bytes = slot->base ? bytes : 0;
        if (!slot->base) return NULL;
    }
    slot->busy = 1;
    return slot->base;
}

void ck_scratch_release(void *buffer) {
    if (!buffer) return;
    scratch_slot *slot = slot_key_ok ? pthread_getspecific(slot_key) : NULL;
    if (slot && slot->busy && slot->base == buffer) {
        slot->busy = 0;
        return;
    }
    free(buffer);
}
