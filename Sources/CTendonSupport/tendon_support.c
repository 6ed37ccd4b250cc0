#define _GNU_SOURCE
#include "tendon_support.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <asm/termbits.h>

int tendon_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int tendon_current_cpu(void) { return sched_getcpu(); }

int tendon_tty_set_exclusive(int fd, int exclusive) {
    return ioctl(fd, exclusive ? TIOCEXCL : TIOCNXCL) == 0 ? 0 : errno;
}

int tendon_tty_set_custom_baud(int fd, uint32_t baud) {
    struct termios2 tio;
    if (ioctl(fd, TCGETS2, &tio) != 0) return errno;
    tio.c_cflag &= ~CBAUD;
    tio.c_cflag |= BOTHER;
    tio.c_ispeed = baud;
    tio.c_ospeed = baud;
    return ioctl(fd, TCSETS2, &tio) == 0 ? 0 : errno;
}

int tendon_tty_bytes_available(int fd, int *count) {
    return ioctl(fd, FIONREAD, count) == 0 ? 0 : errno;
}
