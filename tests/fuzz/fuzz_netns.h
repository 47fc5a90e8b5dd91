/* fuzz_netns.h - run a fuzz target in a network namespace of its own with
 * only the loopback interface up: whatever addresses the fuzzed messages
 * name, the node can reach nothing outside this process. Returns 0, or -1
 * (with a line on stderr) when no namespace can be made (root, or
 * unprivileged user namespaces, are needed): the target then skips every
 * input rather than let a node dial addresses from fuzzed messages. */
#ifndef AEMP_FUZZ_NETNS_H
#define AEMP_FUZZ_NETNS_H

#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int fuzz_netns(void)
{
    if (unshare(CLONE_NEWNET) && unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
        perror("fuzz: SKIP: cannot make a network namespace (run as root or allow user "
               "namespaces)");
        return -1;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr)) abort();
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr)) abort();
    close(s);
    return 0;
}

#endif
