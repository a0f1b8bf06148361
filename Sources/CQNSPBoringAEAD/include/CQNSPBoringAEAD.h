// A tiny shim over the AEAD interface of the BoringSSL copy that swift-crypto
// vendors (its symbols carry the prefix CCryptoBoringSSL_). swift-crypto's own
// AES.GCM API builds a fresh AEAD context per call (~1.2 us per 752-byte cell
// here); keeping one context per traffic key brings that to ~0.15 us.
//
// All references are weak: on a platform where swift-crypto does not link
// BoringSSL (Apple, which uses CryptoKit), qnsp_aead_available() returns 0 and
// QNSPCrypto falls back to the portable swift-crypto path.
#ifndef CQNSP_BORING_AEAD_H
#define CQNSP_BORING_AEAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the vendored BoringSSL AEAD symbols are linked into this binary.
int qnsp_aead_available(void);

/// Algorithm ids for qnsp_aead_new.
enum { QNSP_AEAD_AES_256_GCM = 1, QNSP_AEAD_CHACHA20_POLY1305 = 2 };

/// Creates a context for a 32-byte key and a 16-byte tag; NULL on failure.
void *qnsp_aead_new(int algorithm, const uint8_t *key, size_t key_len);
/// Frees (and wipes) a context from qnsp_aead_new.
void qnsp_aead_free(void *ctx);
/// Seals in_len bytes: writes ciphertext || tag (in_len + 16 bytes) to out. 1 on success.
int qnsp_aead_seal(void *ctx, uint8_t *out, size_t max_out, const uint8_t *nonce12,
                   const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);
/// Opens in_len bytes (ciphertext || tag): writes in_len - 16 bytes to out. 1 on success.
int qnsp_aead_open(void *ctx, uint8_t *out, size_t max_out, const uint8_t *nonce12,
                   const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);

#ifdef __cplusplus
}
#endif
#endif
