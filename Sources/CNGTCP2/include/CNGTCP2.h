#ifndef CNGTCP2_H
#define CNGTCP2_H

// A small shim over Debian's ngtcp2 0.12.1 + ngtcp2_crypto_gnutls + gnutls 3.7.9 for QNSPQUIC.
// The header does not include ngtcp2's or gnutls's headers, so Swift sees only these names.
// Why a shim: ngtcp2_conn_client_new and friends are C macros over *_versioned functions
// (Swift cannot import them), gnutls needs a ngtcp2_crypto_conn_ref at a fixed address, and
// libngtcp2 does not check its arguments (every entry point here does).
//
// Debian: apt-get install libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#define CNGTCP2_MAX_CIDLEN 20
#define CNGTCP2_SCIDLEN 18
#define CNGTCP2_SECRETLEN 32
#define CNGTCP2_MAX_UDP_PAYLOAD 1452
/// TLS alert no_application_protocol (RFC 7301); as a QUIC error code: 0x100 + 120.
#define CNGTCP2_ALERT_NO_APPLICATION_PROTOCOL 120

/// Error codes of the shim's own (ngtcp2's liberr codes are passed through as they are).
#define CNGTCP2_ERR_ARGUMENT (-9001)
#define CNGTCP2_ERR_TLS (-9002)
#define CNGTCP2_ERR_NOMEM (-9003)
/// ngtcp2 codes the Swift side needs to tell apart.
#define CNGTCP2_ERR_STREAM_DATA_BLOCKED (-210)
#define CNGTCP2_ERR_STREAM_SHUT_WR (-221)
#define CNGTCP2_ERR_STREAM_NOT_FOUND (-222)
#define CNGTCP2_ERR_CLOSING (-230)
#define CNGTCP2_ERR_DRAINING (-231)
#define CNGTCP2_ERR_WRITE_MORE (-240)
#define CNGTCP2_ERR_RETRY (-241)
#define CNGTCP2_ERR_DROP_CONN (-242)
#define CNGTCP2_ERR_IDLE_CLOSE (-248)
#define CNGTCP2_ERR_CRYPTO (-215)
#define CNGTCP2_ERR_STREAM_ID_BLOCKED (-208)

typedef struct cngtcp2_conn cngtcp2_conn;
typedef struct cngtcp2_cred cngtcp2_cred;

/// Events a connection reports to its owner (the `owner` pointer given at creation). All
/// return 0, or -1 to fail the connection. Data pointers are valid only during the call.
typedef struct cngtcp2_callbacks {
    int (*stream_data)(void *owner, int64_t stream_id, int fin, const uint8_t *data, size_t len);
    int (*stream_acked)(void *owner, int64_t stream_id, uint64_t offset, uint64_t len);
    int (*stream_open)(void *owner, int64_t stream_id);
    int (*stream_close)(void *owner, int64_t stream_id, uint64_t app_error_code);
    int (*handshake_completed)(void *owner);
    int (*cid_added)(void *owner, const uint8_t *cid, size_t len);
    int (*cid_removed)(void *owner, const uint8_t *cid, size_t len);
    int (*stream_credit)(void *owner, int64_t stream_id);
} cngtcp2_callbacks;

/// Transport parameters and settings this project chooses (all in bytes / nanoseconds).
typedef struct cngtcp2_params {
    uint64_t max_data;
    uint64_t max_stream_data;
    uint64_t max_streams_bidi;
    uint64_t idle_timeout_ns;
    uint64_t handshake_timeout_ns;
} cngtcp2_params;

/// The fields of a first (Initial) packet that a server needs to accept it.
typedef struct cngtcp2_initial {
    uint32_t version;
    uint8_t dcid[CNGTCP2_MAX_CIDLEN];
    size_t dcidlen;
    uint8_t scid[CNGTCP2_MAX_CIDLEN];
    size_t scidlen;
    const uint8_t *token;  // points into the packet
    size_t tokenlen;
} cngtcp2_initial;

/// Monotonic clock in nanoseconds (ngtcp2's timestamps).
uint64_t cngtcp2_now(void);
/// Random bytes from gnutls's generator. 0 on success.
int cngtcp2_random(uint8_t *dest, size_t len);

// MARK: Credentials

/// A self-signed ECDSA P-256 certificate and its PKCS#8 key, both PEM. `*certlen`/`*keylen` hold
/// the buffer capacities on entry and the lengths on return. 0 on success.
int cngtcp2_generate_self_signed(const char *common_name, uint8_t *cert, size_t *certlen, uint8_t *key, size_t *keylen);
/// Server credentials from PEM certificate + key; NULL if they do not load.
cngtcp2_cred *cngtcp2_cred_new_server(const uint8_t *cert, size_t certlen, const uint8_t *key, size_t keylen);
/// Client credentials that do not verify the server's certificate (QNSP inside authenticates it).
cngtcp2_cred *cngtcp2_cred_new_client(void);
void cngtcp2_cred_free(cngtcp2_cred *cred);

// MARK: Connections

/// A client connection to `remote` offering one ALPN. NULL with `*err` set on failure.
cngtcp2_conn *cngtcp2_client_new(const cngtcp2_callbacks *cb, void *owner, cngtcp2_cred *cred,
                                 const struct sockaddr *local, socklen_t locallen,
                                 const struct sockaddr *remote, socklen_t remotelen,
                                 const uint8_t *alpn, size_t alpnlen, const cngtcp2_params *params, int *err);
/// A server connection for a first packet. `alpns` is the ALPN wire list (length-prefixed
/// names) the server accepts; others fail the handshake with no_application_protocol. `odcid`
/// is the original DCID when the client came back with a valid Retry token (NULL otherwise).
/// `secret` (CNGTCP2_SECRETLEN bytes) derives the stateless-reset tokens of the server's CIDs.
cngtcp2_conn *cngtcp2_server_new(const cngtcp2_callbacks *cb, void *owner, cngtcp2_cred *cred,
                                 const struct sockaddr *local, socklen_t locallen,
                                 const struct sockaddr *remote, socklen_t remotelen,
                                 const cngtcp2_initial *initial, const uint8_t *odcid, size_t odcidlen,
                                 const uint8_t *alpns, size_t alpnslen, const uint8_t *secret,
                                 const cngtcp2_params *params, int *err);
void cngtcp2_conn_free(cngtcp2_conn *c);

/// Feeds one datagram. 0, or a negative code; after one, write the close (cngtcp2_write_close)
/// unless it is CNGTCP2_ERR_DRAINING / CNGTCP2_ERR_DROP_CONN. Empty datagrams are ignored.
int cngtcp2_read(cngtcp2_conn *c, const struct sockaddr *local, socklen_t locallen,
                 const struct sockaddr *remote, socklen_t remotelen, const uint8_t *data, size_t len, uint64_t now);
/// Writes one packet into `out`, carrying up to `datalen` bytes of `stream_id`'s data (stream_id
/// -1: none). Returns the packet length (0: nothing to send) or a negative code; `*consumed` is
/// the stream bytes taken (-1 if none). `dest`/`destlen` receive the packet's destination.
ssize_t cngtcp2_write(cngtcp2_conn *c, uint8_t *out, size_t outlen, int64_t stream_id,
                      const uint8_t *data, size_t datalen, int fin, ssize_t *consumed,
                      struct sockaddr_storage *dest, socklen_t *destlen, uint64_t now);
/// Pacing: call after a run of cngtcp2_write calls; the next packet is due at cngtcp2_expiry.
void cngtcp2_update_tx_time(cngtcp2_conn *c, uint64_t now);
/// How many bytes may be sent in one burst before pacing applies.
size_t cngtcp2_send_quantum(cngtcp2_conn *c);
/// Writes the CONNECTION_CLOSE for the last error (a TLS alert after a handshake failure, the
/// library error otherwise, or the application code set by cngtcp2_set_app_error).
ssize_t cngtcp2_write_close(cngtcp2_conn *c, uint8_t *out, size_t outlen,
                            struct sockaddr_storage *dest, socklen_t *destlen, uint64_t now);
void cngtcp2_set_app_error(cngtcp2_conn *c, uint64_t code);
/// When the timer must fire next (UINT64_MAX: never), and what to do when it does (0 or a code).
uint64_t cngtcp2_expiry(cngtcp2_conn *c);
int cngtcp2_handle_expiry(cngtcp2_conn *c, uint64_t now);
/// Opens a bidirectional stream. 0 and `*stream_id`, or a negative code.
int cngtcp2_open_bidi(cngtcp2_conn *c, int64_t *stream_id);
/// Gives the peer `n` more bytes of credit on a stream and on the connection.
int cngtcp2_extend(cngtcp2_conn *c, int64_t stream_id, uint64_t n);
/// Resets a stream in both directions with an application error code.
int cngtcp2_shutdown_stream(cngtcp2_conn *c, int64_t stream_id, uint64_t code);
int cngtcp2_handshake_completed(cngtcp2_conn *c);
int cngtcp2_in_closing_or_draining(cngtcp2_conn *c);
/// 1 when the connection ended because the peer sent a valid stateless reset (its token matched).
int cngtcp2_stateless_reset_received(cngtcp2_conn *c);
/// The negotiated ALPN (copied into `out`, capacity `cap`); its length, 0 if none.
size_t cngtcp2_alpn(cngtcp2_conn *c, uint8_t *out, size_t cap);
/// The CONNECTION_CLOSE the peer sent: `*is_app`, `*code` (0 if none was received).
void cngtcp2_peer_close(cngtcp2_conn *c, int *is_app, uint64_t *code);
/// The server's current source CIDs, each CNGTCP2_MAX_CIDLEN bytes in `out` with lengths in
/// `lens`; returns the count (at most `cap`).
size_t cngtcp2_scids(cngtcp2_conn *c, uint8_t *out, size_t *lens, size_t cap);
/// The current path's remote address.
void cngtcp2_remote(cngtcp2_conn *c, struct sockaddr_storage *addr, socklen_t *len);
/// Moves a client to a new local address (connection migration; path validation follows).
int cngtcp2_migrate(cngtcp2_conn *c, const struct sockaddr *local, socklen_t locallen, uint64_t now);
const char *cngtcp2_strerror(int code);

// MARK: Server side, before a connection exists

/// Decodes the CIDs of any packet. 0 (long header: `*version` non-zero), 1 if Version
/// Negotiation is needed, or a negative code. `short_dcidlen` is the length of our CIDs.
int cngtcp2_decode_cids(const uint8_t *pkt, size_t len, size_t short_dcidlen, uint32_t *version,
                        uint8_t *dcid, size_t *dcidlen, uint8_t *scid, size_t *scidlen);
/// Accepts a first packet: 0 with `*out` filled, or a negative code (not an acceptable Initial).
int cngtcp2_accept(const uint8_t *pkt, size_t len, cngtcp2_initial *out);
/// A Retry packet for `initial` (address validation). Returns its length or a negative code.
ssize_t cngtcp2_write_retry(uint8_t *out, size_t outlen, const cngtcp2_initial *initial, const uint8_t *secret,
                            const struct sockaddr *remote, socklen_t remotelen, uint64_t now);
/// 1 if `initial` carries a Retry token (whatever its validity).
int cngtcp2_has_retry_token(const cngtcp2_initial *initial);
/// Verifies a Retry token; 0 and the original DCID, or -1.
int cngtcp2_verify_retry_token(const cngtcp2_initial *initial, const uint8_t *secret,
                               const struct sockaddr *remote, socklen_t remotelen, uint64_t timeout_ns,
                               uint64_t now, uint8_t *odcid, size_t *odcidlen);
/// A stateless reset for a packet of `pktlen` bytes to `dcid` (smaller than it). Length or -1.
ssize_t cngtcp2_write_stateless_reset(uint8_t *out, size_t outlen, const uint8_t *secret,
                                      const uint8_t *dcid, size_t dcidlen, size_t pktlen);
/// A Version Negotiation packet answering a long-header packet with these CIDs.
ssize_t cngtcp2_write_version_negotiation(uint8_t *out, size_t outlen, const uint8_t *dcid, size_t dcidlen,
                                          const uint8_t *scid, size_t scidlen);

#endif
