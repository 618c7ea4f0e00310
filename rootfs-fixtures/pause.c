/* The pod sandbox's init for tests/cri.rs (a kubelet's "pause" image):
 * holds the pod's namespaces, reaps what is re-parented to it, and exits
 * 0 on SIGINT or SIGTERM. Built static by the CRI test and packed as a
 * one-file image by rootfs-fixtures/make-images.py --pause. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction q = {.sa_handler = quit}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (getpid() != 1) {
        return 1;
    }
    sigaction(SIGINT, &q, NULL);
    sigaction(SIGTERM, &q, NULL);
    sigaction(SIGCHLD, &r, NULL);
    for (;;) {
        pause();
    }
}
