/* The kernel's own cost of a container start, for comparison: unshare the
 * same namespaces berth uses, clone the init (pid 1 of the new pid
 * namespace), make / private, bind the rootfs, pivot_root into it, exec
 * /bin/true; the parent waits. No cgroups, mounts or config.
 * usage: floor ROOTFS */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *rootfs;

static int child(void *arg) {
    (void)arg;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return 10;
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) return 11;
    if (chdir(rootfs)) return 12;
    if (syscall(SYS_pivot_root, ".", ".")) return 13;
    if (umount2(".", MNT_DETACH)) return 14;
    if (chdir("/")) return 15;
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
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
