/* udpecho PORT: answers each UDP datagram on PORT with "got " and its
 * bytes, and prints them; for the -p .../udp test (busybox has no UDP
 * server). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: udpecho PORT\n");
		return 2;
	}
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("udpecho");
		return 1;
	}
	for (;;) {
		char buf[512], out[600];
		struct sockaddr_in from;
		socklen_t len = sizeof from;
		ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		buf[n] = 0;
		int m = snprintf(out, sizeof out, "got %s", buf);
		sendto(s, out, m, 0, (struct sockaddr *)&from, len);
		printf("%s\n", buf);
		fflush(stdout);
	}
}
