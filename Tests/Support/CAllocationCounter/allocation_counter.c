#define _GNU_SOURCE
#include "allocation_counter.h"
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread uint64_t thread_allocations __attribute__((tls_model("initial-exec")));
static volatile int seen_call;

uint64_t tendon_thread_allocation_count(void) { return thread_allocations; }
int tendon_allocation_counter_active(void) {
    void *p = malloc(1);
    free(p);
    return seen_call;
}

void *malloc(size_t n) { thread_allocations++; seen_call = 1; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { thread_allocations++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { thread_allocations++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t al, size_t n) { thread_allocations++; return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { thread_allocations++; return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n) {
    thread_allocations++;
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
