#ifndef CQSSH_AGENT_POSIX_H
#define CQSSH_AGENT_POSIX_H

#include <stddef.h>

/// Reads the connected peer's uid from a Unix-domain socket (SO_PEERCRED on Linux,
/// getpeereid elsewhere). 0 on success, -1 with errno set.
int qssh_agent_peer_uid(int fd, unsigned *uid);

/// Makes this process undumpable: no core dumps (RLIMIT_CORE 0) and, on Linux,
/// PR_SET_DUMPABLE 0 (no ptrace attach by same-uid processes, no /proc/PID/mem).
/// Returns 0 when every step succeeded, else the errno of the first failure.
int qssh_agent_harden_process(void);

/// Allocates `size` bytes of zeroed, page-aligned memory, locked in RAM where the OS
/// allows (mlock) and excluded from core dumps (MADV_DONTDUMP). Returns NULL on failure.
/// `*locked` is set to 1 when mlock succeeded, 0 when the memory is usable but not locked.
void *qssh_agent_secure_alloc(size_t size, int *locked);

/// Wipes, unlocks and frees memory from qssh_agent_secure_alloc.
void qssh_agent_secure_free(void *ptr, size_t size);

/// Creates a listening Unix-domain stream socket at `path` with mode 0600 (umask 0177
/// while binding), close-on-exec. Returns the descriptor, or -1 with errno set.
int qssh_agent_listen_unix(const char *path, int backlog);

/// Connects to the Unix-domain socket at `path` (close-on-exec). Returns the descriptor, or -1.
int qssh_agent_connect_unix(const char *path);

/// accept(2) with close-on-exec, retried on EINTR. Returns the descriptor, or -1 with errno set.
int qssh_agent_accept(int fd);

#endif
