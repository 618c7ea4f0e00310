/* Calls the syscall numbered argv[1] with zero arguments and prints what
 * came back: "ret=R errno=E". Built static by `make fixtures` and copied
 * into test containers, to see what a seccomp filter answers for a number
 * (busybox has no tool for this). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: syscall NR\n");
        return 2;
    }
    errno = 0;
    long r = syscall(atol(argv[1]), 0, 0, 0, 0, 0, 0);
    printf("ret=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
}
