/* Prints the calling process's NUMA memory policy as get_mempolicy(2)
 * reports it: "mode=N nodes=0xMASK". Built static by `make fixtures` and
 * copied into test containers (busybox has no tool for this). */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    int mode = -1;
    unsigned long mask[16] = {0};
    if (syscall(SYS_get_mempolicy, &mode, mask, 16 * 8 * sizeof(unsigned long), 0, 0) != 0) {
        perror("get_mempolicy");
        return 1;
    }
    printf("mode=%d nodes=0x%lx\n", mode, mask[0]);
    return 0;
}
