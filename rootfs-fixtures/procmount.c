/* Tries what a container must not be able to do when a whole procfs is
 * visible in its mount namespace: from a new user, mount and pid namespace
 * of its own (its uid and gid mapped to 1 there: mapping root would need
 * CAP_SETFCAP), mount a fresh procfs
 * on /proc. Prints "mounted" or "mount: REASON". Built static by `make
 * fixtures` (busybox's unshare -r cannot write the maps here). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int r = write(fd, text, strlen(text)) < 0 ? -1 : 0;
    close(fd);
    return r;
}

int main(void) {
    char map[64];
    unsigned uid = geteuid(), gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0) {
        printf("unshare: %s\n", strerror(errno));
        return 1;
    }
    snprintf(map, sizeof map, "1 %u 1\n", uid);
    if (put("/proc/self/setgroups", "deny") != 0 || put("/proc/self/uid_map", map) != 0) {
        printf("uid_map: %s\n", strerror(errno));
        return 1;
    }
    snprintf(map, sizeof map, "1 %u 1\n", gid);
    if (put("/proc/self/gid_map", map) != 0) {
        printf("gid_map: %s\n", strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (mount("none", "/proc", "proc", 0, NULL) == 0)
            printf("mounted\n");
        else
            printf("mount: %s\n", strerror(errno));
        return 0;
    }
    int st;
    waitpid(pid, &st, 0);
    return 0;
}
