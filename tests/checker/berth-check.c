/*
 * berth-check: the in-container checker of Berth's runtime tests (like youki's `runtimetest`).
 * The tests compile it with `gcc -static` (berth_tests::checker) and put it in the test image
 * as /bin/berth-check, so it runs in any root file system. Each mode prints `key=value` lines;
 * a refused call prints the errno's name (`EPERM`), never a localised message.
 *
 *   report                 session, process group, terminal, seccomp mode, capabilities,
 *                          no_new_privs, and the mounts (`mount=POINT TYPE OPTIONS`)
 *   open PATH r|w|rw       opens PATH: `open=ok` or `open=ERRNO`
 *   mknod PATH c|b MAJ MIN creates a device node: `mknod=ok` or `mknod=ERRNO`
 *   tiocsti TEXT           pushes TEXT into the input of the terminal on fds 0, 1 and 2
 *   kill PID SIG           kill(2) with a raw PID (0 and -1 included)
 *   vsock                  socket(AF_VSOCK, SOCK_STREAM, 0)
 *   pidfd_getfd            pidfd_open(self) then pidfd_getfd(pidfd, 0, 0)
 *   swap A B SECONDS       renameat2(A, B, RENAME_EXCHANGE) in a loop for SECONDS
 *   traceme                PTRACE_TRACEME (its parent becomes its tracer), then waits for
 *                          SIGTERM and exits 42
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static const char *err(void) {
    const char *n = strerrorname_np(errno);
    return n ? n : "EUNKNOWN";
}

static void status_line(const char *key, const char *out) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    size_t len = strlen(key);
    if (!f) {
        printf("%s=%s\n", out, err());
        return;
    }
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, len) == 0 && line[len] == ':') {
            char *v = line + len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n")] = 0;
            printf("%s=%s\n", out, v);
        }
    }
    fclose(f);
}

static void exit42(int sig) {
    (void)sig;
    _exit(42);
}

static int report(void) {
    printf("pid=%d\n", getpid());
    printf("sid=%d\n", getsid(0));
    printf("pgid=%d\n", getpgid(0));
    for (int fd = 0; fd < 3; fd++) {
        const char *name = ttyname(fd);
        printf("tty%d=%s\n", fd, name ? name : "none");
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    printf("ctty=%s\n", fd >= 0 ? "yes" : err());
    if (fd >= 0)
        close(fd);
    status_line("Seccomp", "seccomp");
    status_line("NoNewPrivs", "nonewprivs");
    status_line("CapEff", "capeff");
    status_line("CapBnd", "capbnd");
    FILE *m = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    while (m && fgets(line, sizeof line, m)) {
        /* id parent maj:min root point options ... - type source superoptions */
        char point[1024], opts[1024], type[256];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s %1023s", point, opts) != 2 ||
            sscanf(dash + 3, "%255s", type) != 1)
            continue;
        printf("mount=%s %s %s\n", point, type, opts);
    }
    if (m)
        fclose(m);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: berth-check report|open|mknod|tiocsti|kill|vsock|pidfd_getfd|swap ...\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "report"))
        return report();
    if (!strcmp(mode, "open") && argc == 4) {
        int flags = !strcmp(argv[3], "r") ? O_RDONLY : !strcmp(argv[3], "w") ? O_WRONLY : O_RDWR;
        int fd = open(argv[2], flags | O_NOCTTY | O_NONBLOCK);
        printf("open=%s\n", fd >= 0 ? "ok" : err());
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(mode, "mknod") && argc == 6) {
        mode_t type = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
        int r = mknod(argv[2], type | 0666, makedev(atoi(argv[4]), atoi(argv[5])));
        printf("mknod=%s\n", r == 0 ? "ok" : err());
        return r == 0 ? 0 : 1;
    }
    if (!strcmp(mode, "tiocsti") && argc == 3) {
        int any = 0;
        for (int fd = 0; fd < 3; fd++) {
            int ok = 1;
            for (const char *c = argv[2]; *c; c++) {
                if (ioctl(fd, TIOCSTI, c) != 0) {
                    ok = 0;
                    break;
                }
            }
            printf("tiocsti%d=%s\n", fd, ok ? "ok" : err());
            any |= ok;
        }
        return any ? 0 : 1;
    }
    if (!strcmp(mode, "kill") && argc == 4) {
        int r = kill(atoi(argv[2]), atoi(argv[3]));
        printf("kill=%s\n", r == 0 ? "ok" : err());
        return r == 0 ? 0 : 1;
    }
    if (!strcmp(mode, "vsock")) {
        int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        printf("vsock=%s\n", fd >= 0 ? "ok" : err());
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(mode, "pidfd_getfd")) {
        long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
        if (pidfd < 0) {
            printf("pidfd_open=%s\n", err());
            return 1;
        }
        long fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
        printf("pidfd_getfd=%s\n", fd >= 0 ? "ok" : err());
        return fd >= 0 ? 0 : 1;
    }
    if (!strcmp(mode, "swap") && argc == 5) {
        time_t end = time(NULL) + atoi(argv[4]);
        long n = 0;
        while (time(NULL) < end) {
            if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], RENAME_EXCHANGE) != 0) {
                printf("swap=%s\n", err());
                return 1;
            }
            n++;
        }
        printf("swaps=%ld\n", n);
        return 0;
    }
    if (!strcmp(mode, "traceme")) {
        signal(SIGTERM, exit42);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            printf("traceme=%s\n", err());
            return 1;
        }
        printf("traceme=ok\n");
        for (;;)
            pause();
    }
    fprintf(stderr, "berth-check: unknown mode or wrong arguments: %s\n", mode);
    return 2;
}
