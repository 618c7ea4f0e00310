/* Runs a command and prints its peak RSS in KiB (wait4's ru_maxrss) on
 * stderr's last line. A small process forks it, so the child's peak is not
 * inflated by a big parent's pages from before its exec. usage: rss CMD... */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return 1;
    fprintf(stderr, "maxrss %ld\n", ru.ru_maxrss);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
