#ifndef TENDON_ALLOCATION_COUNTER_H
#define TENDON_ALLOCATION_COUNTER_H
#include <stdint.h>
/* Linked into the test bundle only. It interposes malloc and friends (forwarding to glibc's
   __libc_* entry points) and counts calls made by the current thread, so a test can prove that
   the real-time cycle allocates nothing while other threads allocate freely. */
uint64_t tendon_thread_allocation_count(void);
/* 1 when the interposer is active in this process (the symbols won the link). */
int tendon_allocation_counter_active(void);
#endif
