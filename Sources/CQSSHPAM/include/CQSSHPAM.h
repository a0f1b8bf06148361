#ifndef CQSSHPAM_H
#define CQSSHPAM_H

// A small wrapper around Linux-PAM (Debian: libpam0g-dev) for qsshd's password login
// (docs/protocol.md §7.10). One handle is one PAM transaction for one login: authenticate and
// check the account, later open the session, and at the end close it and end the transaction.
// libpam and its modules are not all thread-safe: callers serialize every call.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An open PAM transaction (opaque).
typedef struct qssh_pam qssh_pam;

/// The step of `qssh_pam_login` that failed.
enum {
    QSSH_PAM_STEP_START = 1,
    QSSH_PAM_STEP_AUTHENTICATE = 2,
    QSSH_PAM_STEP_ACCOUNT = 3,
};

/// Starts a transaction for `user` with `service` (/etc/pam.d/SERVICE), sets PAM_RHOST to
/// `rhost` and PAM_TTY to "ssh", answers the password prompt of the auth stack with the
/// `password_len` bytes at `password` (the only copy this function makes is the reply PAM frees;
/// it is answered once, a second secret prompt fails the conversation), then runs the account
/// stack (expired and locked accounts fail there or in authentication; a password that must be
/// changed fails too, PAM_NEW_AUTHTOK_REQD, as no new one can be asked for).
///
/// On PAM_SUCCESS `*out` is the transaction (end it with `qssh_pam_end`). On failure `*out` is
/// NULL, the transaction is already ended, `*failed_step` says which step failed, `message`
/// (of `message_size` bytes) holds PAM's text for the status, and `*delay_usec` the failure
/// delay the modules asked for (pam_fail_delay): this function does not sleep it, the caller
/// waits before answering (without holding a thread).
int qssh_pam_login(const char *service, const char *user, const char *rhost,
                   const unsigned char *password, size_t password_len,
                   qssh_pam **out, int *failed_step, unsigned int *delay_usec, char *message, size_t message_size);

/// Starts a transaction for an already authenticated `user` (no auth stack; for the session
/// helper process, docs/protocol.md §7.10), with PAM_RHOST and PAM_TTY as `qssh_pam_login`.
int qssh_pam_begin(const char *service, const char *user, const char *rhost, qssh_pam **out, char *message,
                   size_t message_size);

/// pam_setcred(PAM_ESTABLISH_CRED) then pam_open_session. The qsshd process serves many users:
/// its resource limits, supplementary groups and umask are saved before and restored after, so
/// modules such as pam_limits, pam_group or pam_umask cannot change the server itself. Returns
/// the PAM status (PAM_SUCCESS or the first failure); `message` as for `qssh_pam_login`.
int qssh_pam_open_session(qssh_pam *handle, char *message, size_t message_size);

/// After `qssh_pam_open_session`: 1 when the session stack changed limit `resource` (0 ..<
/// `qssh_pam_limit_count()`), with the values it set in `*soft` / `*hard` (for the session's
/// processes; the server's own were restored); 0 otherwise.
int qssh_pam_limit_count(void);
int qssh_pam_session_limit(qssh_pam *handle, int resource, unsigned long long *soft, unsigned long long *hard);

/// The PAM environment after the session opened (pam_env, pam_systemd, ...): a NULL-terminated
/// array of "NAME=value" strings; free it with `qssh_pam_free_environment`. NULL when there is none.
char **qssh_pam_environment(qssh_pam *handle);
void qssh_pam_free_environment(char **list);

/// Closes the session (when it was opened), deletes the credentials and ends the transaction.
/// `handle` is freed; NULL is ignored.
void qssh_pam_end(qssh_pam *handle);

/// PAM_SUCCESS, for callers that do not include the PAM headers.
int qssh_pam_success(void);

#ifdef __cplusplus
}
#endif

#endif
