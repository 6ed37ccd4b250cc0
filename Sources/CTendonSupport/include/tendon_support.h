#ifndef TENDON_SUPPORT_H
#define TENDON_SUPPORT_H
/* Thin wrappers for the few Linux interfaces that are C macros or variadic and so cannot be
   called from Swift directly. Each returns 0 on success or an errno value. */
#include <stdint.h>

/* Pin the calling thread to one CPU (CPU_SET is a macro). */
int tendon_pin_current_thread(int cpu);
/* The CPU the calling thread last ran on, or -1. */
int tendon_current_cpu(void);
/* ioctl(fd, TIOCEXCL) / TIOCNXCL: exclusive access to a tty. */
int tendon_tty_set_exclusive(int fd, int exclusive);
/* Set an arbitrary baud rate with termios2 (BOTHER) when the B-constant does not exist. */
int tendon_tty_set_custom_baud(int fd, uint32_t baud);
/* Bytes waiting in the input queue (FIONREAD). */
int tendon_tty_bytes_available(int fd, int *count);

#endif
