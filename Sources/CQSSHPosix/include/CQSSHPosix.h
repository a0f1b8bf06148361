#ifndef CQSSH_POSIX_H
#define CQSSH_POSIX_H

#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np where the C library has it (glibc >= 2.29, macOS 10.15);
/// returns ENOSYS elsewhere.
int qssh_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// Makes the spawned child close every descriptor from `lowfd` up (so a session never inherits
/// the server's sockets, event-loop descriptors or other sessions' pipes). 0 on success.
int qssh_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);

/// POSIX_SPAWN_SETSID where available, else 0 (callers then fall back to a new process group).
short qssh_spawn_setsid_flag(void);

/// Limits the C library's malloc to `count` arenas (glibc: mallopt M_ARENA_MAX; elsewhere does
/// nothing). Call before other threads allocate. Returns 1 on success, 0 otherwise.
int qssh_limit_malloc_arenas(int count);

/// A pipe whose both ends are close-on-exec (pipe2 with O_CLOEXEC, or pipe + fcntl). 0 on success.
int qssh_pipe_cloexec(int fds[2]);

/// Forks a child on a new pseudo-terminal of `rows` x `cols`, which chdirs to `dir` (if not NULL)
/// and execs `path` with `argv`/`envp`. Returns the child's pid (the terminal's session leader)
/// and stores the master side in `*master`; returns -1 with errno set on failure.
int qssh_forkpty_exec(int *master, const char *path, char *const argv[], char *const envp[], const char *dir,
                      unsigned short rows, unsigned short cols);

/// Forks and execs `path` as another account: in the child, a new session (setsid), stdin/stdout/
/// stderr from `in_fd`/`out_fd`/`err_fd`, every other descriptor closed, `dir` as working directory,
/// then the `nlimits` resource limits in `limits` (triplets: resource, soft, hard; NULL for none),
/// setgroups(`groups`), setgid(`gid`), setuid(`uid`) — the exec does not happen if any of these
/// fails. Returns the pid, or -1 with errno set.
int qssh_spawn_as(const char *path, char *const argv[], char *const envp[], const char *dir,
                  int in_fd, int out_fd, int err_fd, unsigned uid, unsigned gid, const unsigned *groups, int ngroups,
                  const unsigned long long *limits, int nlimits);

/// `qssh_forkpty_exec` that also sets `limits` (as for `qssh_spawn_as`) and drops to
/// `uid`/`gid`/`groups` in the child before exec; the terminal is given to `uid` and group
/// `tty_gid` with mode 0620 (or to `gid` with 0600 when `tty_gid` is -1).
int qssh_forkpty_exec_as(int *master, const char *path, char *const argv[], char *const envp[], const char *dir,
                         unsigned short rows, unsigned short cols, unsigned uid, unsigned gid, const unsigned *groups, int ngroups,
                         int tty_gid, const unsigned long long *limits, int nlimits);

/// Sets / reads a terminal's window size (TIOCSWINSZ / TIOCGWINSZ). 0 on success.
int qssh_set_winsize(int fd, unsigned short rows, unsigned short cols);
int qssh_get_winsize(int fd, unsigned short *rows, unsigned short *cols);

#endif
