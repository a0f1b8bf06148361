#include "CQNSPBoringAEAD.h"

typedef struct qnsp_evp_aead_st QNSP_EVP_AEAD;
typedef struct qnsp_evp_aead_ctx_st QNSP_EVP_AEAD_CTX;

// Weak references to swift-crypto's vendored BoringSSL (see the header).
extern const QNSP_EVP_AEAD *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void) __attribute__((weak));
extern const QNSP_EVP_AEAD *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void) __attribute__((weak));
extern QNSP_EVP_AEAD_CTX *CCryptoBoringSSL_EVP_AEAD_CTX_new(const QNSP_EVP_AEAD *aead, const uint8_t *key,
                                                           size_t key_len, size_t tag_len) __attribute__((weak));
extern void CCryptoBoringSSL_EVP_AEAD_CTX_free(QNSP_EVP_AEAD_CTX *ctx) __attribute__((weak));
extern int CCryptoBoringSSL_EVP_AEAD_CTX_seal(const QNSP_EVP_AEAD_CTX *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad,
                                              size_t ad_len) __attribute__((weak));
extern int CCryptoBoringSSL_EVP_AEAD_CTX_open(const QNSP_EVP_AEAD_CTX *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad,
                                              size_t ad_len) __attribute__((weak));

int qnsp_aead_available(void) {
    return CCryptoBoringSSL_EVP_aead_aes_256_gcm != 0 && CCryptoBoringSSL_EVP_aead_chacha20_poly1305 != 0 &&
           CCryptoBoringSSL_EVP_AEAD_CTX_new != 0 && CCryptoBoringSSL_EVP_AEAD_CTX_free != 0 &&
           CCryptoBoringSSL_EVP_AEAD_CTX_seal != 0 && CCryptoBoringSSL_EVP_AEAD_CTX_open != 0;
}

void *qnsp_aead_new(int algorithm, const uint8_t *key, size_t key_len) {
    if (!qnsp_aead_available()) return 0;
    const QNSP_EVP_AEAD *aead;
    switch (algorithm) {
    case QNSP_AEAD_AES_256_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_256_gcm(); break;
    case QNSP_AEAD_CHACHA20_POLY1305: aead = CCryptoBoringSSL_EVP_aead_chacha20_poly1305(); break;
    default: return 0;
    }
    return CCryptoBoringSSL_EVP_AEAD_CTX_new(aead, key, key_len, 16);
}

void qnsp_aead_free(void *ctx) {
    if (ctx != 0 && CCryptoBoringSSL_EVP_AEAD_CTX_free != 0) CCryptoBoringSSL_EVP_AEAD_CTX_free((QNSP_EVP_AEAD_CTX *)ctx);
}

int qnsp_aead_seal(void *ctx, uint8_t *out, size_t max_out, const uint8_t *nonce12,
                   const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len) {
    size_t out_len = 0;
    if (ctx == 0) return 0;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_seal((const QNSP_EVP_AEAD_CTX *)ctx, out, &out_len, max_out, nonce12, 12,
                                               in, in_len, ad, ad_len);
    return ok == 1 && out_len == in_len + 16;
}

int qnsp_aead_open(void *ctx, uint8_t *out, size_t max_out, const uint8_t *nonce12,
                   const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len) {
    size_t out_len = 0;
    if (ctx == 0 || in_len < 16) return 0;
    int ok = CCryptoBoringSSL_EVP_AEAD_CTX_open((const QNSP_EVP_AEAD_CTX *)ctx, out, &out_len, max_out, nonce12, 12,
                                               in, in_len, ad, ad_len);
    return ok == 1 && out_len == in_len - 16;
}
