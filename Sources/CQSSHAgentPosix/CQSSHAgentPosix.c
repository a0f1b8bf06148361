#define _GNU_SOURCE
#include "CQSSHAgentPosix.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

int qssh_agent_peer_uid(int fd, unsigned *uid) {
#if defined(__linux__)
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    if (len != sizeof(cred)) { errno = EINVAL; return -1; }
    *uid = (unsigned)cred.uid;
    return 0;
#else
    uid_t u; gid_t g;
    if (getpeereid(fd, &u, &g) != 0) return -1;
    *uid = (unsigned)u;
    return 0;
#endif
}

int qssh_agent_harden_process(void) {
    int first = 0;
    struct rlimit none = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &none) != 0 && first == 0) first = errno;
#if defined(__linux__)
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 && first == 0) first = errno;
#endif
    return first;
}

void *qssh_agent_secure_alloc(size_t size, int *locked) {
    *locked = 0;
    if (size == 0) size = 1;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#if defined(MADV_DONTDUMP)
    (void)madvise(p, size, MADV_DONTDUMP);
#endif
    if (mlock(p, size) == 0) *locked = 1;
    return p;
}

void qssh_agent_secure_free(void *ptr, size_t size) {
    if (ptr == NULL) return;
    if (size == 0) size = 1;
#if defined(__GLIBC__)
    explicit_bzero(ptr, size);
#else
    volatile unsigned char *v = ptr;
    for (size_t i = 0; i < size; i++) v[i] = 0;
#endif
    (void)munlock(ptr, size);
    (void)munmap(ptr, size);
}

static int fill_address(struct sockaddr_un *addr, const char *path) {
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(addr->sun_path)) { errno = ENAMETOOLONG; return -1; }
    memcpy(addr->sun_path, path, n + 1);
    return 0;
}

static int stream_socket(void) {
#if defined(SOCK_CLOEXEC)
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#endif
}

int qssh_agent_listen_unix(const char *path, int backlog) {
    struct sockaddr_un addr;
    if (fill_address(&addr, path) != 0) return -1;
    int fd = stream_socket();
    if (fd < 0) return -1;
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    int saved = errno;
    umask(old);
    if (rc != 0 || chmod(path, 0600) != 0 || listen(fd, backlog) != 0) {
        if (rc == 0) saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int qssh_agent_connect_unix(const char *path) {
    struct sockaddr_un addr;
    if (fill_address(&addr, path) != 0) return -1;
    int fd = stream_socket();
    if (fd < 0) return -1;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr)); } while (rc != 0 && errno == EINTR);
    if (rc != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}

int qssh_agent_accept(int fd) {
    int c;
    do {
#if defined(__linux__)
        c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
#else
        c = accept(fd, NULL, NULL);
        if (c >= 0) (void)fcntl(c, F_SETFD, FD_CLOEXEC);
#endif
    } while (c < 0 && errno == EINTR);
    return c;
}
