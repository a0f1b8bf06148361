#include "CQSSHPAM.h"

#include <grp.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct qssh_pam {
    pam_handle_t *pamh;
    int session_open;
    int credentials_set;
    // The conversation's view of the password: set only during pam_authenticate.
    const unsigned char *password;
    size_t password_len;
    int answered;
    // The failure delay the modules asked for (pam_fail_delay), in microseconds.
    unsigned int requested_delay;
    // The resource limits the session stack set (pam_limits), before the server's came back.
    struct rlimit session_limits[RLIM_NLIMITS];
    int session_limit_set[RLIM_NLIMITS];
};

// Replaces libpam's sleep on failure: the delay is only recorded, and qsshd waits without
// holding a thread (or the PAM lock).
static void record_delay(int status, unsigned int usec, void *data) {
    (void)status;
    struct qssh_pam *h = data;
    if (h != NULL) h->requested_delay = usec;
}

static void wipe(void *p, size_t n) {
    if (p == NULL || n == 0) return;
    explicit_bzero(p, n);
}

static void copy_message(char *message, size_t size, pam_handle_t *pamh, int status) {
    if (message == NULL || size == 0) return;
    const char *text = pamh != NULL ? pam_strerror(pamh, status) : "PAM error";
    snprintf(message, size, "%s", text != NULL ? text : "PAM error");
}

static int conversation(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    struct qssh_pam *h = data;
    if (count <= 0 || count > PAM_MAX_NUM_MSG || h == NULL) return PAM_CONV_ERR;
    struct pam_response *replies = calloc((size_t)count, sizeof *replies);
    if (replies == NULL) return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        switch (messages[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF: {
            // The password, once; nothing else can be asked for.
            if (h->password == NULL || h->answered) goto fail;
            char *copy = malloc(h->password_len + 1);
            if (copy == NULL) goto fail;
            memcpy(copy, h->password, h->password_len);
            copy[h->password_len] = 0;
            replies[i].resp = copy;
            h->answered = 1;
            break;
        }
        case PAM_PROMPT_ECHO_ON:
            goto fail;  // no keyboard-interactive questions over the password method
        case PAM_ERROR_MSG:
        case PAM_TEXT_INFO:
        default:
            break;  // informational: no reply
        }
    }
    *responses = replies;
    return PAM_SUCCESS;
fail:
    for (int i = 0; i < count; i++) {
        if (replies[i].resp != NULL) {
            wipe(replies[i].resp, strlen(replies[i].resp));
            free(replies[i].resp);
        }
    }
    free(replies);
    return PAM_CONV_ERR;
}

int qssh_pam_success(void) { return PAM_SUCCESS; }

/// pam_start with the conversation, PAM_RHOST and PAM_TTY set; on failure nothing is left allocated.
static int start_handle(const char *service, const char *user, const char *rhost, struct qssh_pam **out, char *message,
                        size_t message_size) {
    *out = NULL;
    struct qssh_pam *h = calloc(1, sizeof *h);
    if (h == NULL) {
        copy_message(message, message_size, NULL, PAM_BUF_ERR);
        return PAM_BUF_ERR;
    }
    struct pam_conv conv = {conversation, h};  // pam_start copies it
    int status = pam_start(service, user, &conv, &h->pamh);
    if (status != PAM_SUCCESS) {
        copy_message(message, message_size, h->pamh, status);
        if (h->pamh != NULL) pam_end(h->pamh, status);
        free(h);
        return status;
    }
    if (rhost != NULL) pam_set_item(h->pamh, PAM_RHOST, rhost);
    pam_set_item(h->pamh, PAM_TTY, "ssh");  // as sshd: some modules want a tty name
    *out = h;
    return PAM_SUCCESS;
}

int qssh_pam_login(const char *service, const char *user, const char *rhost,
                   const unsigned char *password, size_t password_len,
                   qssh_pam **out, int *failed_step, unsigned int *delay_usec, char *message, size_t message_size) {
    *out = NULL;
    *delay_usec = 0;
    *failed_step = QSSH_PAM_STEP_START;
    struct qssh_pam *h = NULL;
    int status = start_handle(service, user, rhost, &h, message, message_size);
    if (status != PAM_SUCCESS) return status;
    pam_set_item(h->pamh, PAM_FAIL_DELAY, (const void *)record_delay);

    *failed_step = QSSH_PAM_STEP_AUTHENTICATE;
    if (password_len > 0 && memchr(password, 0, password_len) != NULL) {
        // Modules read a C string: a NUL would cut the password short.
        if (message != NULL && message_size > 0) snprintf(message, message_size, "the password contains a NUL byte");
        pam_end(h->pamh, PAM_AUTH_ERR);
        free(h);
        return PAM_AUTH_ERR;
    }
    h->password = password;
    h->password_len = password_len;
    h->answered = 0;
    status = pam_authenticate(h->pamh, PAM_DISALLOW_NULL_AUTHTOK);
    h->password = NULL;  // the conversation cannot reach the caller's buffer any more
    h->password_len = 0;
    if (status == PAM_SUCCESS) {
        *failed_step = QSSH_PAM_STEP_ACCOUNT;
        status = pam_acct_mgmt(h->pamh, PAM_DISALLOW_NULL_AUTHTOK);
    }
    int user_changed = 0;
    if (status == PAM_SUCCESS) {
        // As OpenSSH: a module may not log the client in as someone else (PAM_USER rewritten).
        const void *item = NULL;
        if (pam_get_item(h->pamh, PAM_USER, &item) != PAM_SUCCESS || item == NULL ||
            strcmp((const char *)item, user) != 0) {
            status = PAM_PERM_DENIED;
            user_changed = 1;
        }
    }
    if (status != PAM_SUCCESS) {
        if (user_changed) {
            if (message != NULL && message_size > 0) snprintf(message, message_size, "a PAM module changed the user name");
        } else {
            copy_message(message, message_size, h->pamh, status);
        }
        *delay_usec = h->requested_delay;
        pam_end(h->pamh, status);
        free(h);
        return status;
    }
    *failed_step = 0;
    *out = h;
    return PAM_SUCCESS;
}

int qssh_pam_begin(const char *service, const char *user, const char *rhost, qssh_pam **out, char *message,
                   size_t message_size) {
    // No password here: any secret prompt fails the conversation.
    return start_handle(service, user, rhost, out, message, message_size);
}

int qssh_pam_open_session(qssh_pam *h, char *message, size_t message_size) {
    if (h == NULL) return PAM_SYSTEM_ERR;
    // What the modules could change in this (shared) process.
    struct rlimit limits[RLIM_NLIMITS];
    int have[RLIM_NLIMITS];
    for (int r = 0; r < RLIM_NLIMITS; r++) have[r] = getrlimit(r, &limits[r]) == 0;
    int group_count = getgroups(0, NULL);
    gid_t *groups = group_count > 0 ? calloc((size_t)group_count, sizeof *groups) : NULL;
    if (groups != NULL) group_count = getgroups(group_count, groups);
    else if (group_count > 0) group_count = -1;  // cannot save them: leave them alone
    mode_t mask = umask(022);
    umask(mask);

    int status = pam_setcred(h->pamh, PAM_ESTABLISH_CRED);
    if (status == PAM_SUCCESS) {
        h->credentials_set = 1;
        status = pam_open_session(h->pamh, 0);
        if (status == PAM_SUCCESS) h->session_open = 1;
    }
    if (status != PAM_SUCCESS) copy_message(message, message_size, h->pamh, status);

    for (int r = 0; r < RLIM_NLIMITS; r++) {
        struct rlimit now;
        h->session_limit_set[r] = 0;
        if (have[r] && getrlimit(r, &now) == 0 &&
            (now.rlim_cur != limits[r].rlim_cur || now.rlim_max != limits[r].rlim_max)) {
            h->session_limits[r] = now;  // for the session's processes
            h->session_limit_set[r] = 1;
        }
        if (have[r]) setrlimit(r, &limits[r]);
    }
    if (group_count >= 0) setgroups((size_t)group_count, groups);
    free(groups);
    umask(mask);
    return status;
}

int qssh_pam_limit_count(void) { return RLIM_NLIMITS; }

int qssh_pam_session_limit(qssh_pam *h, int resource, unsigned long long *soft, unsigned long long *hard) {
    if (h == NULL || resource < 0 || resource >= RLIM_NLIMITS || !h->session_limit_set[resource]) return 0;
    *soft = (unsigned long long)h->session_limits[resource].rlim_cur;
    *hard = (unsigned long long)h->session_limits[resource].rlim_max;
    return 1;
}

char **qssh_pam_environment(qssh_pam *h) {
    if (h == NULL) return NULL;
    return pam_getenvlist(h->pamh);
}

void qssh_pam_free_environment(char **list) {
    if (list == NULL) return;
    for (char **p = list; *p != NULL; p++) {
        wipe(*p, strlen(*p));
        free(*p);
    }
    free(list);
}

void qssh_pam_end(qssh_pam *h) {
    if (h == NULL) return;
    struct rlimit limits[RLIM_NLIMITS];
    int have[RLIM_NLIMITS];
    for (int r = 0; r < RLIM_NLIMITS; r++) have[r] = getrlimit(r, &limits[r]) == 0;
    int status = PAM_SUCCESS;
    if (h->session_open) status = pam_close_session(h->pamh, 0);
    if (h->credentials_set) pam_setcred(h->pamh, PAM_DELETE_CRED);
    pam_end(h->pamh, status);
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        if (have[r]) setrlimit(r, &limits[r]);
    }
    free(h);
}
