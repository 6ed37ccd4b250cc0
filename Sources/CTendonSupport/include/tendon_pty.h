#ifndef TENDON_PTY_H
#define TENDON_PTY_H
/* Pseudo-terminal and ppoll wrappers: glibc declares these only under _GNU_SOURCE/_XOPEN_SOURCE,
   which Swift's Glibc module does not define. Each returns 0 on success or an errno value. */
#include <stdint.h>
#include <stddef.h>

/* posix_openpt + grantpt + unlockpt + ptsname_r. *master_fd is O_RDWR|O_NOCTTY|O_CLOEXEC. */
int tendon_pty_open(int *master_fd, char *slave_path, size_t slave_path_size);
/* ppoll on one descriptor with a nanosecond timeout (<0 waits forever). *ready is 0 on timeout,
   1 with *revents set otherwise. EINTR is returned to the caller. */
int tendon_ppoll_one(int fd, short events, int64_t timeout_ns, int *ready, short *revents);

/* The line rate a tty is set to (termios2 c_ospeed, so custom BOTHER rates read back exactly). */
int tendon_tty_get_baud(int fd, uint32_t *baud);

#endif
