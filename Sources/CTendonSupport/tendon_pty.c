#define _GNU_SOURCE
#include "tendon_pty.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <asm/termbits.h>

int tendon_pty_open(int *master_fd, char *slave_path, size_t slave_path_size) {
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return errno;
    if (grantpt(fd) != 0 || unlockpt(fd) != 0) {
        int code = errno;
        close(fd);
        return code;
    }
    int code = ptsname_r(fd, slave_path, slave_path_size);
    if (code != 0) {
        close(fd);
        return code;
    }
    *master_fd = fd;
    return 0;
}

int tendon_ppoll_one(int fd, short events, int64_t timeout_ns, int *ready, short *revents) {
    struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    int r = ppoll(&pfd, 1, tsp, NULL);
    if (r < 0) return errno;
    *ready = r;
    *revents = pfd.revents;
    return 0;
}

int tendon_tty_get_baud(int fd, uint32_t *baud) {
    struct termios2 tio;
    if (ioctl(fd, TCGETS2, &tio) != 0) return errno;
    *baud = tio.c_ospeed;
    return 0;
}
