/* The kernel's own cost of a container start, for comparison: the work of
 * `berth spec`'s default config done by the shortest C program. Clone the
 * init into new pid, mount, network, ipc and uts namespaces (pid 1 of the
 * new pid namespace); make / private, bind the rootfs; mount proc, a /dev
 * tmpfs with the default device nodes (bound from the host's) and
 * symlinks, devpts, shm, mqueue, sysfs and the cgroup hierarchy (bound); pivot_root into it;
 * mask the default masked paths and make the read-only ones read-only;
 * remount the root read-only; set the hostname; exec /bin/true. The parent
 * waits. No cgroup of its own, no config to parse, no capabilities,
 * seccomp or state: what remains between berth and this is berth's own.
 * usage: floor ROOTFS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *rootfs;

static int at(const char *dir, const char *rel, char *buf) {
    snprintf(buf, 4096, "%s%s", dir, rel);
    return 0;
}

static int mnt(const char *src, const char *rel, const char *type, unsigned long fl, const char *data) {
    char p[4096];
    at(rootfs, rel, p);
    mkdir(p, 0755);
    return mount(src, p, type, fl, data);
}

static int child(void *arg) {
    (void)arg;
    char p[4096];
    const unsigned long ns = MS_NOSUID, nx = MS_NOEXEC, nd = MS_NODEV;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return 10;
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) return 11;
    if (mnt("proc", "/proc", "proc", ns | nx | nd, NULL)) return 20;
    if (mnt("tmpfs", "/dev", "tmpfs", ns | MS_STRICTATIME, "mode=755,size=65536k")) return 21;
    if (mnt("devpts", "/dev/pts", "devpts", ns | nx, "newinstance,ptmxmode=0666,mode=0620,gid=5")) return 22;
    if (mnt("shm", "/dev/shm", "tmpfs", ns | nx | nd, "mode=1777,size=65536k")) return 23;
    if (mnt("mqueue", "/dev/mqueue", "mqueue", ns | nx | nd, NULL)) return 24;
    if (mnt("sysfs", "/sys", "sysfs", ns | nx | nd | MS_RDONLY, NULL)) return 25;
    /* Without a cgroup namespace a runtime shows the host's hierarchy: a
     * bind (a fresh cgroup2 mount costs about 9 ms here, and no runtime
     * pays it without a cgroup namespace). */
    at(rootfs, "/sys/fs/cgroup", p);
    if (mount("/sys/fs/cgroup", p, NULL, MS_BIND | MS_REC, NULL)) return 26;
    if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | ns | nx | nd, NULL)) return 26;
    static const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (unsigned i = 0; i < sizeof devs / sizeof *devs; i++) {
        char host[64];
        snprintf(host, sizeof host, "/dev/%s", devs[i]);
        snprintf(p, sizeof p, "%s/dev/%s", rootfs, devs[i]);
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0) return 27;
        close(fd);
        if (mount(host, p, NULL, MS_BIND, NULL)) return 28;
    }
    static const char *links[][2] = {{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
                                     {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
                                     {"pts/ptmx", "/dev/ptmx"}};
    for (unsigned i = 0; i < sizeof links / sizeof *links; i++) {
        at(rootfs, links[i][1], p);
        if (symlink(links[i][0], p)) return 29;
    }
    if (chdir(rootfs)) return 12;
    if (syscall(SYS_pivot_root, ".", ".")) return 13;
    if (umount2(".", MNT_DETACH)) return 14;
    if (chdir("/")) return 15;
    static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                   "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
    for (unsigned i = 0; i < sizeof masked / sizeof *masked; i++) {
        struct stat st;
        if (stat(masked[i], &st)) continue;
        if (S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL)
                                : mount("/dev/null", masked[i], NULL, MS_BIND, NULL))
            return 30;
    }
    static const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
    for (unsigned i = 0; i < sizeof ro / sizeof *ro; i++) {
        if (access(ro[i], F_OK)) continue;
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL)) return 31;
        if (mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | ns | nx | nd, NULL)) return 32;
    }
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL)) return 33;
    if (sethostname("floor", 5)) return 34;
    execl("/bin/true", "true", (char *)NULL);
    return 16;
}

int main(int argc, char **argv) {
    static char stack[1 << 16];
    if (argc < 2) return 2;
    rootfs = argv[1];
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0) { perror("clone"); return 1; }
    int st;
    if (waitpid(pid, &st, 0) < 0) return 1;
    if (WIFEXITED(st) && WEXITSTATUS(st)) fprintf(stderr, "floor: step %d failed\n", WEXITSTATUS(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
