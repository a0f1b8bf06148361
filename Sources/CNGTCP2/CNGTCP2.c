// See include/CNGTCP2.h. The one file that includes ngtcp2's and gnutls's headers.
#include "CNGTCP2.h"

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// TLS 1.3 only; the middlebox compatibility mode is off (QUIC forbids it, aioquic rejects it).
static const char *const PRIORITY =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

struct cngtcp2_cred {
    gnutls_certificate_credentials_t cred;
};

struct cngtcp2_conn {
    ngtcp2_conn *conn;
    gnutls_session_t session;
    ngtcp2_crypto_conn_ref ref;  // gnutls_session_set_ptr points here: the struct never moves
    cngtcp2_callbacks cb;
    void *owner;
    ngtcp2_connection_close_error last_error;
    int is_server;
    uint8_t secret[CNGTCP2_SECRETLEN];
    int reset_received;  // a valid stateless reset from the peer ended the connection
};

uint64_t cngtcp2_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

int cngtcp2_random(uint8_t *dest, size_t len) {
    if (len == 0) return 0;
    if (dest == NULL) return CNGTCP2_ERR_ARGUMENT;
    return gnutls_rnd(GNUTLS_RND_RANDOM, dest, len) == 0 ? 0 : CNGTCP2_ERR_TLS;
}

// MARK: Credentials

int cngtcp2_generate_self_signed(const char *common_name, uint8_t *cert, size_t *certlen, uint8_t *key, size_t *keylen) {
    if (!common_name || !cert || !certlen || !key || !keylen) return CNGTCP2_ERR_ARGUMENT;
    gnutls_x509_privkey_t pk = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t cpem = {NULL, 0}, kpem = {NULL, 0};
    int rv = CNGTCP2_ERR_TLS;
    unsigned char serial[16];
    time_t now = time(NULL);
    // gnutls 3.7.9 writes a private scalar with its high bit set as 33 bytes (a sign byte), which
    // strict parsers (Python's cryptography, hence aioquic) reject: draw keys until it is 32 bytes.
    for (int attempt = 0;; attempt++) {
        if (attempt == 64) goto done;
        if (pk) gnutls_x509_privkey_deinit(pk);
        pk = NULL;
        if (gnutls_x509_privkey_init(&pk) < 0) goto done;
        if (gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
            goto done;
        gnutls_ecc_curve_t curve;
        gnutls_datum_t x = {NULL, 0}, y = {NULL, 0}, k = {NULL, 0};
        if (gnutls_x509_privkey_export_ecc_raw(pk, &curve, &x, &y, &k) < 0) goto done;
        int good = k.size == 32 && (k.data[0] & 0x80) == 0;
        gnutls_free(x.data);
        gnutls_free(y.data);
        if (k.data) { gnutls_memset(k.data, 0, k.size); gnutls_free(k.data); }
        if (good) break;
    }
    if (gnutls_x509_crt_init(&crt) < 0) goto done;
    if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial) < 0) goto done;
    serial[0] &= 0x7f;
    if (gnutls_x509_crt_set_version(crt, 3) < 0 || gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, now + (time_t)20 * 365 * 24 * 3600) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name, (unsigned)strlen(common_name)) < 0 ||
        gnutls_x509_crt_set_key(crt, pk) < 0 || gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
        gnutls_x509_crt_sign2(crt, crt, pk, GNUTLS_DIG_SHA256, 0) < 0)
        goto done;
    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem) < 0) goto done;
    if (gnutls_x509_privkey_export2_pkcs8(pk, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &kpem) < 0) goto done;
    if (cpem.size > *certlen || kpem.size > *keylen) { rv = CNGTCP2_ERR_NOMEM; goto done; }
    memcpy(cert, cpem.data, cpem.size);
    *certlen = cpem.size;
    memcpy(key, kpem.data, kpem.size);
    *keylen = kpem.size;
    rv = 0;
done:
    if (kpem.data) { gnutls_memset(kpem.data, 0, kpem.size); gnutls_free(kpem.data); }
    if (cpem.data) gnutls_free(cpem.data);
    if (crt) gnutls_x509_crt_deinit(crt);
    if (pk) gnutls_x509_privkey_deinit(pk);
    return rv;
}

cngtcp2_cred *cngtcp2_cred_new_server(const uint8_t *cert, size_t certlen, const uint8_t *key, size_t keylen) {
    if (!cert || !key || certlen == 0 || keylen == 0 || certlen > 1u << 20 || keylen > 1u << 20) return NULL;
    cngtcp2_cred *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) { free(c); return NULL; }
    gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)certlen}, kd = {(unsigned char *)key, (unsigned)keylen};
    if (gnutls_certificate_set_x509_key_mem(c->cred, &cd, &kd, GNUTLS_X509_FMT_PEM) < 0) {
        gnutls_certificate_free_credentials(c->cred);
        free(c);
        return NULL;
    }
    return c;
}

cngtcp2_cred *cngtcp2_cred_new_client(void) {
    cngtcp2_cred *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) { free(c); return NULL; }
    return c;  // no trust store, no verify function: the certificate is not checked
}

void cngtcp2_cred_free(cngtcp2_cred *cred) {
    if (!cred) return;
    gnutls_certificate_free_credentials(cred->cred);
    free(cred);
}

// MARK: ngtcp2 callbacks (forward to the owner)

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) { return ((cngtcp2_conn *)ref->user_data)->conn; }

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx) {
    (void)ctx;
    (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static int get_new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user_data) {
    (void)conn;
    cngtcp2_conn *c = user_data;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) < 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (ngtcp2_crypto_generate_stateless_reset_token(token, c->secret, sizeof c->secret, cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (c->cb.cid_added && c->cb.cid_added(c->owner, cid->data, cid->datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int remove_cid_cb(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data) {
    (void)conn;
    cngtcp2_conn *c = user_data;
    if (c->cb.cid_removed && c->cb.cid_removed(c->owner, cid->data, cid->datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t offset, const uint8_t *data,
                               size_t datalen, void *user_data, void *stream_user_data) {
    (void)conn; (void)offset; (void)stream_user_data;
    cngtcp2_conn *c = user_data;
    int fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    if (c->cb.stream_data && c->cb.stream_data(c->owner, stream_id, fin, data, datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int acked_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset, uint64_t datalen, void *user_data,
                    void *stream_user_data) {
    (void)conn; (void)stream_user_data;
    cngtcp2_conn *c = user_data;
    if (c->cb.stream_acked && c->cb.stream_acked(c->owner, stream_id, offset, datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t stream_id, void *user_data) {
    (void)conn;
    cngtcp2_conn *c = user_data;
    if (c->cb.stream_open && c->cb.stream_open(c->owner, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id, uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
    (void)conn; (void)stream_user_data;
    cngtcp2_conn *c = user_data;
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) app_error_code = 0;
    if (c->cb.stream_close && c->cb.stream_close(c->owner, stream_id, app_error_code) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int stream_reset_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t final_size, uint64_t app_error_code,
                           void *user_data, void *stream_user_data) {
    (void)final_size; (void)app_error_code; (void)user_data; (void)stream_user_data;
    // The peer abandoned its direction: answer by resetting ours (the stream closes then).
    ngtcp2_conn_shutdown_stream_write(conn, stream_id, app_error_code);
    return 0;
}

static int recv_stateless_reset_cb(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr, void *user_data) {
    (void)conn; (void)sr;
    // ngtcp2 calls this only for a reset whose token matches one the peer gave us.
    ((cngtcp2_conn *)user_data)->reset_received = 1;
    return 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data) {
    (void)conn;
    cngtcp2_conn *c = user_data;
    if (c->cb.handshake_completed && c->cb.handshake_completed(c->owner) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t max_data, void *user_data,
                                     void *stream_user_data) {
    (void)conn; (void)max_data; (void)stream_user_data;
    cngtcp2_conn *c = user_data;
    if (c->cb.stream_credit && c->cb.stream_credit(c->owner, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cbs, int is_server) {
    memset(cbs, 0, sizeof *cbs);
    if (is_server) {
        cbs->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cbs->client_initial = ngtcp2_crypto_client_initial_cb;
        cbs->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cbs->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cbs->encrypt = ngtcp2_crypto_encrypt_cb;
    cbs->decrypt = ngtcp2_crypto_decrypt_cb;
    cbs->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cbs->update_key = ngtcp2_crypto_update_key_cb;
    cbs->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cbs->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cbs->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cbs->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cbs->rand = rand_cb;
    cbs->get_new_connection_id = get_new_cid_cb;
    cbs->remove_connection_id = remove_cid_cb;
    cbs->recv_stream_data = recv_stream_data_cb;
    cbs->acked_stream_data_offset = acked_cb;
    cbs->stream_open = stream_open_cb;
    cbs->stream_close = stream_close_cb;
    cbs->stream_reset = stream_reset_cb;
    cbs->handshake_completed = handshake_completed_cb;
    cbs->recv_stateless_reset = recv_stateless_reset_cb;
    cbs->extend_max_stream_data = extend_max_stream_data_cb;
}

static void fill_settings(ngtcp2_settings *s, ngtcp2_transport_params *tp, const cngtcp2_params *p, uint64_t now) {
    ngtcp2_settings_default(s);
    s->initial_ts = now;
    s->max_tx_udp_payload_size = CNGTCP2_MAX_UDP_PAYLOAD;
    if (p->handshake_timeout_ns) s->handshake_timeout = p->handshake_timeout_ns;
    s->max_window = p->max_data * 4;
    s->max_stream_window = p->max_stream_data * 4;
    ngtcp2_transport_params_default(tp);
    tp->initial_max_data = p->max_data;
    tp->initial_max_stream_data_bidi_local = p->max_stream_data;
    tp->initial_max_stream_data_bidi_remote = p->max_stream_data;
    tp->initial_max_stream_data_uni = 0;
    tp->initial_max_streams_bidi = p->max_streams_bidi;
    tp->initial_max_streams_uni = 0;
    tp->max_idle_timeout = p->idle_timeout_ns;
    tp->active_connection_id_limit = 4;
}

static int set_path(ngtcp2_path *path, const struct sockaddr *local, socklen_t locallen, const struct sockaddr *remote,
                    socklen_t remotelen) {
    if (!local || !remote || locallen == 0 || remotelen == 0 || locallen > sizeof(struct sockaddr_storage) ||
        remotelen > sizeof(struct sockaddr_storage))
        return -1;
    path->local.addr = (ngtcp2_sockaddr *)local;
    path->local.addrlen = locallen;
    path->remote.addr = (ngtcp2_sockaddr *)remote;
    path->remote.addrlen = remotelen;
    path->user_data = NULL;
    return 0;
}

static cngtcp2_conn *conn_alloc(const cngtcp2_callbacks *cb, void *owner, int is_server) {
    cngtcp2_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cb = *cb;
    c->owner = owner;
    c->is_server = is_server;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    ngtcp2_connection_close_error_default(&c->last_error);
    return c;
}

static int session_setup(cngtcp2_conn *c, cngtcp2_cred *cred, const uint8_t *alpns, size_t alpnslen) {
    // alpns: ALPN wire list (1-byte length + name, repeated)
    gnutls_datum_t protos[16];
    unsigned n = 0;
    size_t i = 0;
    while (i < alpnslen && n < 16) {
        size_t l = alpns[i];
        if (l == 0 || i + 1 + l > alpnslen) return CNGTCP2_ERR_ARGUMENT;
        protos[n].data = (unsigned char *)alpns + i + 1;
        protos[n].size = (unsigned)l;
        n++;
        i += 1 + l;
    }
    if (n == 0 || i != alpnslen) return CNGTCP2_ERR_ARGUMENT;
    unsigned flags = c->is_server ? GNUTLS_SERVER : GNUTLS_CLIENT;
    if (gnutls_init(&c->session, flags | GNUTLS_NO_END_OF_EARLY_DATA) < 0) { c->session = NULL; return CNGTCP2_ERR_TLS; }
    int rv = c->is_server ? ngtcp2_crypto_gnutls_configure_server_session(c->session)
                          : ngtcp2_crypto_gnutls_configure_client_session(c->session);
    if (rv != 0) return CNGTCP2_ERR_TLS;
    if (gnutls_priority_set_direct(c->session, PRIORITY, NULL) < 0) return CNGTCP2_ERR_TLS;
    if (gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, cred->cred) < 0) return CNGTCP2_ERR_TLS;
    // Server: an offer without any of our ALPNs fails with the alert no_application_protocol.
    unsigned aflags = c->is_server ? (GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE) : 0;
    if (gnutls_alpn_set_protocols(c->session, protos, n, aflags) < 0) return CNGTCP2_ERR_TLS;
    if (!c->is_server && gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, "localhost", 9) < 0) return CNGTCP2_ERR_TLS;
    gnutls_session_set_ptr(c->session, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->conn, c->session);
    return 0;
}

cngtcp2_conn *cngtcp2_client_new(const cngtcp2_callbacks *cb, void *owner, cngtcp2_cred *cred, const struct sockaddr *local,
                                 socklen_t locallen, const struct sockaddr *remote, socklen_t remotelen, const uint8_t *alpn,
                                 size_t alpnlen, const cngtcp2_params *params, int *err) {
    int e = CNGTCP2_ERR_ARGUMENT;
    ngtcp2_path path;
    if (!cb || !cred || !alpn || alpnlen == 0 || alpnlen > 255 || !params || set_path(&path, local, locallen, remote, remotelen))
        goto fail;
    cngtcp2_conn *c = conn_alloc(cb, owner, 0);
    if (!c) { e = CNGTCP2_ERR_NOMEM; goto fail; }
    if (gnutls_rnd(GNUTLS_RND_RANDOM, c->secret, sizeof c->secret) < 0) { e = CNGTCP2_ERR_TLS; goto fail_c; }
    ngtcp2_cid dcid, scid;
    dcid.datalen = 18;
    scid.datalen = CNGTCP2_SCIDLEN;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) < 0 || gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) < 0) {
        e = CNGTCP2_ERR_TLS;
        goto fail_c;
    }
    ngtcp2_callbacks cbs;
    ngtcp2_settings s;
    ngtcp2_transport_params tp;
    fill_callbacks(&cbs, 0);
    fill_settings(&s, &tp, params, cngtcp2_now());
    e = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cbs, &s, &tp, NULL, c);
    if (e != 0) { c->conn = NULL; goto fail_c; }
    uint8_t wire[256];
    wire[0] = (uint8_t)alpnlen;
    memcpy(wire + 1, alpn, alpnlen);
    e = session_setup(c, cred, wire, alpnlen + 1);
    if (e != 0) goto fail_c;
    return c;
fail_c:
    cngtcp2_conn_free(c);
fail:
    if (err) *err = e;
    return NULL;
}

cngtcp2_conn *cngtcp2_server_new(const cngtcp2_callbacks *cb, void *owner, cngtcp2_cred *cred, const struct sockaddr *local,
                                 socklen_t locallen, const struct sockaddr *remote, socklen_t remotelen,
                                 const cngtcp2_initial *initial, const uint8_t *odcid, size_t odcidlen, const uint8_t *alpns,
                                 size_t alpnslen, const uint8_t *secret, const cngtcp2_params *params, int *err) {
    int e = CNGTCP2_ERR_ARGUMENT;
    ngtcp2_path path;
    if (!cb || !cred || !initial || !alpns || !secret || !params || set_path(&path, local, locallen, remote, remotelen) ||
        initial->dcidlen > CNGTCP2_MAX_CIDLEN || initial->scidlen > CNGTCP2_MAX_CIDLEN || odcidlen > CNGTCP2_MAX_CIDLEN ||
        (odcidlen && !odcid))
        goto fail;
    cngtcp2_conn *c = conn_alloc(cb, owner, 1);
    if (!c) { e = CNGTCP2_ERR_NOMEM; goto fail; }
    memcpy(c->secret, secret, CNGTCP2_SECRETLEN);
    ngtcp2_cid dcid, scid;
    ngtcp2_cid_init(&dcid, initial->scid, initial->scidlen);
    scid.datalen = CNGTCP2_SCIDLEN;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) < 0) { e = CNGTCP2_ERR_TLS; goto fail_c; }
    ngtcp2_callbacks cbs;
    ngtcp2_settings s;
    ngtcp2_transport_params tp;
    fill_callbacks(&cbs, 1);
    fill_settings(&s, &tp, params, cngtcp2_now());
    if (odcidlen) {
        ngtcp2_cid_init(&tp.original_dcid, odcid, odcidlen);
        ngtcp2_cid_init(&tp.retry_scid, initial->dcid, initial->dcidlen);
        tp.retry_scid_present = 1;
        s.token.base = (uint8_t *)initial->token;  // validated: lifts the amplification limit
        s.token.len = initial->tokenlen;
    } else {
        ngtcp2_cid_init(&tp.original_dcid, initial->dcid, initial->dcidlen);
    }
    if (ngtcp2_crypto_generate_stateless_reset_token(tp.stateless_reset_token, c->secret, sizeof c->secret, &scid) != 0) {
        e = CNGTCP2_ERR_TLS;
        goto fail_c;
    }
    tp.stateless_reset_token_present = 1;
    e = ngtcp2_conn_server_new(&c->conn, &dcid, &scid, &path, initial->version, &cbs, &s, &tp, NULL, c);
    if (e != 0) { c->conn = NULL; goto fail_c; }
    e = session_setup(c, cred, alpns, alpnslen);
    if (e != 0) goto fail_c;
    return c;
fail_c:
    cngtcp2_conn_free(c);
fail:
    if (err) *err = e;
    return NULL;
}

void cngtcp2_conn_free(cngtcp2_conn *c) {
    if (!c) return;
    if (c->conn) ngtcp2_conn_del(c->conn);
    if (c->session) gnutls_deinit(c->session);
    gnutls_memset(c->secret, 0, sizeof c->secret);
    free(c);
}

int cngtcp2_read(cngtcp2_conn *c, const struct sockaddr *local, socklen_t locallen, const struct sockaddr *remote,
                 socklen_t remotelen, const uint8_t *data, size_t len, uint64_t now) {
    if (!c || !c->conn) return CNGTCP2_ERR_ARGUMENT;
    if (!data || len == 0) return 0;  // libngtcp2 does not check: an empty datagram is simply ignored
    ngtcp2_path path;
    if (set_path(&path, local, locallen, remote, remotelen)) return CNGTCP2_ERR_ARGUMENT;
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, now);
    if (rv == 0) return 0;
    if (rv == NGTCP2_ERR_CRYPTO) {
        uint8_t alert = ngtcp2_conn_get_tls_alert(c->conn);
        if (alert)
            ngtcp2_connection_close_error_set_transport_error_tls_alert(&c->last_error, alert, NULL, 0);
        else
            ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
    } else if (rv != NGTCP2_ERR_DRAINING && rv != NGTCP2_ERR_DROP_CONN && rv != NGTCP2_ERR_RETRY) {
        ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
    }
    return rv;
}

static void copy_dest(const ngtcp2_path_storage *ps, struct sockaddr_storage *dest, socklen_t *destlen) {
    if (!dest || !destlen) return;
    size_t l = ps->path.remote.addrlen;
    if (l > sizeof *dest) l = sizeof *dest;
    memcpy(dest, ps->path.remote.addr, l);
    *destlen = (socklen_t)l;
}

ssize_t cngtcp2_write(cngtcp2_conn *c, uint8_t *out, size_t outlen, int64_t stream_id, const uint8_t *data, size_t datalen,
                      int fin, ssize_t *consumed, struct sockaddr_storage *dest, socklen_t *destlen, uint64_t now) {
    if (!c || !c->conn || !out || outlen == 0 || (datalen && !data)) return CNGTCP2_ERR_ARGUMENT;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize pdatalen = -1;
    ngtcp2_vec v = {(uint8_t *)data, datalen};
    uint32_t flags = fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0;
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, out, outlen, &pdatalen, flags, stream_id,
                                               stream_id >= 0 ? &v : NULL, stream_id >= 0 ? 1 : 0, now);
    if (consumed) *consumed = pdatalen;
    if (n < 0 && n != NGTCP2_ERR_STREAM_DATA_BLOCKED && n != NGTCP2_ERR_STREAM_SHUT_WR && n != NGTCP2_ERR_STREAM_NOT_FOUND)
        ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, (int)n, NULL, 0);
    if (n > 0) copy_dest(&ps, dest, destlen);
    return n;
}

void cngtcp2_update_tx_time(cngtcp2_conn *c, uint64_t now) {
    if (c && c->conn) ngtcp2_conn_update_pkt_tx_time(c->conn, now);
}

size_t cngtcp2_send_quantum(cngtcp2_conn *c) { return (c && c->conn) ? ngtcp2_conn_get_send_quantum(c->conn) : 0; }

ssize_t cngtcp2_write_close(cngtcp2_conn *c, uint8_t *out, size_t outlen, struct sockaddr_storage *dest, socklen_t *destlen,
                            uint64_t now) {
    if (!c || !c->conn || !out || outlen == 0) return CNGTCP2_ERR_ARGUMENT;
    if (ngtcp2_conn_is_in_draining_period(c->conn)) return 0;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, out, outlen, &c->last_error, now);
    if (n > 0) copy_dest(&ps, dest, destlen);
    return n;
}

void cngtcp2_set_app_error(cngtcp2_conn *c, uint64_t code) {
    if (!c) return;
    ngtcp2_connection_close_error_set_application_error(&c->last_error, code, NULL, 0);
}

uint64_t cngtcp2_expiry(cngtcp2_conn *c) { return (c && c->conn) ? ngtcp2_conn_get_expiry(c->conn) : UINT64_MAX; }

int cngtcp2_handle_expiry(cngtcp2_conn *c, uint64_t now) {
    if (!c || !c->conn) return CNGTCP2_ERR_ARGUMENT;
    int rv = ngtcp2_conn_handle_expiry(c->conn, now);
    if (rv != 0 && rv != NGTCP2_ERR_IDLE_CLOSE)
        ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, rv, NULL, 0);
    return rv;
}

int cngtcp2_open_bidi(cngtcp2_conn *c, int64_t *stream_id) {
    if (!c || !c->conn || !stream_id) return CNGTCP2_ERR_ARGUMENT;
    return ngtcp2_conn_open_bidi_stream(c->conn, stream_id, NULL);
}

int cngtcp2_extend(cngtcp2_conn *c, int64_t stream_id, uint64_t n) {
    if (!c || !c->conn) return CNGTCP2_ERR_ARGUMENT;
    if (n == 0) return 0;
    int rv = ngtcp2_conn_extend_max_stream_offset(c->conn, stream_id, n);
    ngtcp2_conn_extend_max_offset(c->conn, n);
    return rv;
}

int cngtcp2_shutdown_stream(cngtcp2_conn *c, int64_t stream_id, uint64_t code) {
    if (!c || !c->conn) return CNGTCP2_ERR_ARGUMENT;
    return ngtcp2_conn_shutdown_stream(c->conn, stream_id, code);
}

int cngtcp2_handshake_completed(cngtcp2_conn *c) { return (c && c->conn) ? ngtcp2_conn_get_handshake_completed(c->conn) : 0; }

int cngtcp2_stateless_reset_received(cngtcp2_conn *c) { return c ? c->reset_received : 0; }

int cngtcp2_in_closing_or_draining(cngtcp2_conn *c) {
    if (!c || !c->conn) return 1;
    return ngtcp2_conn_is_in_closing_period(c->conn) || ngtcp2_conn_is_in_draining_period(c->conn);
}

size_t cngtcp2_alpn(cngtcp2_conn *c, uint8_t *out, size_t cap) {
    if (!c || !c->session || !out) return 0;
    gnutls_datum_t d;
    if (gnutls_alpn_get_selected_protocol(c->session, &d) < 0 || d.size > cap) return 0;
    memcpy(out, d.data, d.size);
    return d.size;
}

void cngtcp2_peer_close(cngtcp2_conn *c, int *is_app, uint64_t *code) {
    if (is_app) *is_app = 0;
    if (code) *code = 0;
    if (!c || !c->conn) return;
    ngtcp2_connection_close_error e;
    ngtcp2_connection_close_error_default(&e);
    ngtcp2_conn_get_connection_close_error(c->conn, &e);
    if (is_app) *is_app = e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
    if (code) *code = e.error_code;
}

size_t cngtcp2_scids(cngtcp2_conn *c, uint8_t *out, size_t *lens, size_t cap) {
    if (!c || !c->conn || !out || !lens) return 0;
    size_t n = ngtcp2_conn_get_num_scid(c->conn);
    if (n == 0) return 0;
    ngtcp2_cid *ids = calloc(n, sizeof *ids);
    if (!ids) return 0;
    n = ngtcp2_conn_get_scid(c->conn, ids);
    size_t k = n < cap ? n : cap;
    for (size_t i = 0; i < k; i++) {
        memcpy(out + i * CNGTCP2_MAX_CIDLEN, ids[i].data, ids[i].datalen);
        lens[i] = ids[i].datalen;
    }
    free(ids);
    return k;
}

void cngtcp2_remote(cngtcp2_conn *c, struct sockaddr_storage *addr, socklen_t *len) {
    if (!c || !c->conn || !addr || !len) return;
    const ngtcp2_path *p = ngtcp2_conn_get_path(c->conn);
    size_t l = p->remote.addrlen > sizeof *addr ? sizeof *addr : p->remote.addrlen;
    memcpy(addr, p->remote.addr, l);
    *len = (socklen_t)l;
}

int cngtcp2_migrate(cngtcp2_conn *c, const struct sockaddr *local, socklen_t locallen, uint64_t now) {
    if (!c || !c->conn || !local || locallen == 0 || locallen > sizeof(struct sockaddr_storage)) return CNGTCP2_ERR_ARGUMENT;
    const ngtcp2_path *cur = ngtcp2_conn_get_path(c->conn);
    ngtcp2_path p = *cur;
    p.local.addr = (ngtcp2_sockaddr *)local;
    p.local.addrlen = locallen;
    return ngtcp2_conn_initiate_migration(c->conn, &p, now);
}

const char *cngtcp2_strerror(int code) {
    switch (code) {
    case CNGTCP2_ERR_ARGUMENT: return "invalid argument";
    case CNGTCP2_ERR_TLS: return "TLS setup failed";
    case CNGTCP2_ERR_NOMEM: return "out of memory";
    default: return ngtcp2_strerror(code);
    }
}

// MARK: Server side, before a connection exists

int cngtcp2_decode_cids(const uint8_t *pkt, size_t len, size_t short_dcidlen, uint32_t *version, uint8_t *dcid, size_t *dcidlen,
                        uint8_t *scid, size_t *scidlen) {
    if (!pkt || len == 0 || !version || !dcid || !dcidlen || !scid || !scidlen || short_dcidlen > CNGTCP2_MAX_CIDLEN)
        return CNGTCP2_ERR_ARGUMENT;
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, short_dcidlen);
    if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) return rv;
    if (vc.dcidlen > CNGTCP2_MAX_CIDLEN || vc.scidlen > CNGTCP2_MAX_CIDLEN) return CNGTCP2_ERR_ARGUMENT;
    *version = vc.version;
    memcpy(dcid, vc.dcid, vc.dcidlen);
    *dcidlen = vc.dcidlen;
    if (vc.scidlen) memcpy(scid, vc.scid, vc.scidlen);
    *scidlen = vc.scidlen;
    return rv == NGTCP2_ERR_VERSION_NEGOTIATION ? 1 : 0;
}

int cngtcp2_accept(const uint8_t *pkt, size_t len, cngtcp2_initial *out) {
    if (!pkt || len == 0 || !out) return CNGTCP2_ERR_ARGUMENT;
    ngtcp2_pkt_hd hd;
    int rv = ngtcp2_accept(&hd, pkt, len);
    if (rv != 0) return rv;
    if (hd.dcid.datalen > CNGTCP2_MAX_CIDLEN || hd.scid.datalen > CNGTCP2_MAX_CIDLEN) return CNGTCP2_ERR_ARGUMENT;
    out->version = hd.version;
    memcpy(out->dcid, hd.dcid.data, hd.dcid.datalen);
    out->dcidlen = hd.dcid.datalen;
    memcpy(out->scid, hd.scid.data, hd.scid.datalen);
    out->scidlen = hd.scid.datalen;
    out->token = hd.token.base;
    out->tokenlen = hd.token.len;
    return 0;
}

ssize_t cngtcp2_write_retry(uint8_t *out, size_t outlen, const cngtcp2_initial *initial, const uint8_t *secret,
                            const struct sockaddr *remote, socklen_t remotelen, uint64_t now) {
    if (!out || !initial || !secret || !remote || remotelen == 0) return CNGTCP2_ERR_ARGUMENT;
    ngtcp2_cid dcid, scid, odcid;
    ngtcp2_cid_init(&dcid, initial->scid, initial->scidlen);
    ngtcp2_cid_init(&odcid, initial->dcid, initial->dcidlen);
    scid.datalen = CNGTCP2_SCIDLEN;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) < 0) return CNGTCP2_ERR_TLS;
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(token, secret, CNGTCP2_SECRETLEN, initial->version,
                                                         (const ngtcp2_sockaddr *)remote, remotelen, &scid, &odcid, now);
    if (tl < 0) return CNGTCP2_ERR_TLS;
    return ngtcp2_crypto_write_retry(out, outlen, initial->version, &dcid, &scid, &odcid, token, (size_t)tl);
}

int cngtcp2_has_retry_token(const cngtcp2_initial *initial) {
    return initial && initial->tokenlen > 0 && initial->token && initial->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
}

int cngtcp2_verify_retry_token(const cngtcp2_initial *initial, const uint8_t *secret, const struct sockaddr *remote,
                               socklen_t remotelen, uint64_t timeout_ns, uint64_t now, uint8_t *odcid, size_t *odcidlen) {
    if (!cngtcp2_has_retry_token(initial) || !secret || !remote || remotelen == 0 || !odcid || !odcidlen) return -1;
    ngtcp2_cid dcid, o;
    ngtcp2_cid_init(&dcid, initial->dcid, initial->dcidlen);
    if (ngtcp2_crypto_verify_retry_token(&o, initial->token, initial->tokenlen, secret, CNGTCP2_SECRETLEN, initial->version,
                                         (const ngtcp2_sockaddr *)remote, remotelen, &dcid, timeout_ns, now) != 0)
        return -1;
    memcpy(odcid, o.data, o.datalen);
    *odcidlen = o.datalen;
    return 0;
}

ssize_t cngtcp2_write_stateless_reset(uint8_t *out, size_t outlen, const uint8_t *secret, const uint8_t *dcid, size_t dcidlen,
                                      size_t pktlen) {
    if (!out || !secret || !dcid || dcidlen == 0 || dcidlen > CNGTCP2_MAX_CIDLEN) return -1;
    // Smaller than the packet that triggered it (so two endpoints cannot loop), at least 21 bytes.
    if (pktlen < 22) return -1;
    size_t total = pktlen - 1 < 43 ? pktlen - 1 : 43;
    size_t randlen = total - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    if (randlen < NGTCP2_MIN_STATELESS_RESET_RANDLEN) return -1;
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64];
    if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, CNGTCP2_SECRETLEN, &cid) != 0) return -1;
    if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, randlen) < 0) return -1;
    return ngtcp2_pkt_write_stateless_reset(out, outlen, token, rnd, randlen);
}

ssize_t cngtcp2_write_version_negotiation(uint8_t *out, size_t outlen, const uint8_t *dcid, size_t dcidlen, const uint8_t *scid,
                                          size_t scidlen) {
    if (!out || dcidlen > CNGTCP2_MAX_CIDLEN || scidlen > CNGTCP2_MAX_CIDLEN || (dcidlen && !dcid) || (scidlen && !scid)) return -1;
    uint8_t r;
    if (gnutls_rnd(GNUTLS_RND_NONCE, &r, 1) < 0) return -1;
    uint32_t sv[] = {NGTCP2_PROTO_VER_V1};
    // The client's SCID becomes our DCID and vice versa.
    return ngtcp2_pkt_write_version_negotiation(out, outlen, r, scid, scidlen, dcid, dcidlen, sv, 1);
}
