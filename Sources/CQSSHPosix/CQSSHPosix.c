#define _GNU_SOURCE
#include "CQSSHPosix.h"
#include <errno.h>
#include <spawn.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <termios.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__APPLE__)
#include <util.h>
#else
#include <pty.h>
#endif

int qssh_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    return posix_spawn_file_actions_addchdir_np(actions, path);
#elif defined(__APPLE__)
    return posix_spawn_file_actions_addchdir_np(actions, path);
#else
    (void)actions; (void)path;
    return ENOSYS;
#endif
}

int qssh_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
#else
    /* Fallback: close what is open now (descriptors opened later by other threads are
       close-on-exec in this codebase). */
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lowfd; fd < max; fd++) {
        if (fcntl(fd, F_GETFD) != -1) posix_spawn_file_actions_addclose(actions, fd);
    }
    return 0;
#endif
}

short qssh_spawn_setsid_flag(void) {
#ifdef POSIX_SPAWN_SETSID
    return POSIX_SPAWN_SETSID;
#else
    return 0;
#endif
}

int qssh_limit_malloc_arenas(int count) {
#if defined(__GLIBC__)
    return mallopt(M_ARENA_MAX, count);
#else
    (void)count;
    return 0;
#endif
}

int qssh_pipe_cloexec(int fds[2]) {
#if defined(__linux__)
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    /* Bulk data (sftp, cat) crosses these pipes: 1 MiB instead of 64 KiB means far fewer
       wake-ups. Best effort: an unprivileged process may be capped by pipe-max-size. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    return 0;
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int qssh_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = {0};
    ws.ws_row = rows;
    ws.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int qssh_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws = {0};
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return -1;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

/* Child side, async-signal-safe only: default signals, nothing blocked, no inherited descriptors,
   working directory, credentials, exec. */
static void qssh_child_exec(const char *path, char *const argv[], char *const envp[], const char *dir,
                            int drop, unsigned uid, unsigned gid, const unsigned *groups, int ngroups,
                            const unsigned long long *limits, int nlimits) {
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 3; fd < max; fd++) close(fd);
    /* Resource limits of the login (a PAM session's pam_limits), while still privileged. */
    for (int i = 0; limits != NULL && i < nlimits; i++) {
        struct rlimit rl = {(rlim_t)limits[3 * i + 1], (rlim_t)limits[3 * i + 2]};
        if (setrlimit((int)limits[3 * i], &rl) != 0) _exit(126);
    }
    if (drop) {
        if (setgroups((size_t)ngroups, (const gid_t *)groups) != 0) _exit(126);
        if (setgid((gid_t)gid) != 0) _exit(126);
        if (setuid((uid_t)uid) != 0) _exit(126);
        if (uid != 0 && setuid(0) == 0) _exit(126); /* must not be able to regain root */
    }
    if (dir != NULL && chdir(dir) != 0) { if (chdir("/") != 0) _exit(126); }
    execve(path, argv, envp);
    _exit(127);
}

int qssh_forkpty_exec(int *master, const char *path, char *const argv[], char *const envp[], const char *dir,
                      unsigned short rows, unsigned short cols) {
    struct winsize ws = {0};
    ws.ws_row = rows;
    ws.ws_col = cols;
    pid_t pid = forkpty(master, NULL, NULL, &ws);
    if (pid == 0) qssh_child_exec(path, argv, envp, dir, 0, 0, 0, NULL, 0, NULL, 0);
    if (pid > 0) fcntl(*master, F_SETFD, FD_CLOEXEC);
    return pid;
}

int qssh_spawn_as(const char *path, char *const argv[], char *const envp[], const char *dir,
                  int in_fd, int out_fd, int err_fd, unsigned uid, unsigned gid, const unsigned *groups, int ngroups,
                  const unsigned long long *limits, int nlimits) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
        qssh_child_exec(path, argv, envp, dir, 1, uid, gid, groups, ngroups, limits, nlimits);
    }
    return pid;
}

int qssh_forkpty_exec_as(int *master, const char *path, char *const argv[], char *const envp[], const char *dir,
                         unsigned short rows, unsigned short cols, unsigned uid, unsigned gid, const unsigned *groups, int ngroups,
                         int tty_gid, const unsigned long long *limits, int nlimits) {
    struct winsize ws = {0};
    ws.ws_row = rows;
    ws.ws_col = cols;
    pid_t pid = forkpty(master, NULL, NULL, &ws);
    if (pid == 0) {
        /* The terminal belongs to the user who logs in on it and to the tty group (so that write(1)
           and wall can reach it, and nobody else), mode 0620, as with sshd. Without a tty group
           the user's own group is used and the mode is 0600. */
        gid_t group = tty_gid >= 0 ? (gid_t)tty_gid : (gid_t)gid;
        mode_t mode = tty_gid >= 0 ? 0620 : 0600;
        if (fchown(0, (uid_t)uid, group) != 0 || fchmod(0, mode) != 0) { /* keep going: the session still works */ }
        qssh_child_exec(path, argv, envp, dir, 1, uid, gid, groups, ngroups, limits, nlimits);
    }
    if (pid > 0) fcntl(*master, F_SETFD, FD_CLOEXEC);
    return pid;
}
