// LD_PRELOAD shim for privilege_test.cpp: while the file named by FL_TEST_EMFILE_WHEN exists,
// if_indextoname() fails with EMFILE, exactly as glibc's does when the process is out of
// descriptors (it opens a socket for the SIOCGIFNAME ioctl). Everything else is the real thing.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <unistd.h>

char* if_indextoname(unsigned int ifindex, char ifname[IF_NAMESIZE]) {
  static char* (*real)(unsigned int, char*);
  if (!real) real = (char* (*)(unsigned int, char*))dlsym(RTLD_NEXT, "if_indextoname");
  const char* when = getenv("FL_TEST_EMFILE_WHEN");
  if (when && access(when, F_OK) == 0) {
    errno = EMFILE;
    return NULL;
  }
  return real(ifindex, ifname);
}
