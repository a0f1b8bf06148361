#include "CSodium.h"

#if !__has_include(<sodium.h>)
// Apple platforms: brew install libsodium; swift build -Xcc -I$(brew --prefix)/include -Xlinker -L$(brew --prefix)/lib
#error "CSodium needs libsodium's headers: apt-get install libsodium-dev, or see the comment above"
#endif
#include <sodium.h>

int csodium_init(void) { return sodium_init() < 0 ? -1 : 0; }

int csodium_ristretto255_is_valid_point(const uint8_t p[32]) { return crypto_core_ristretto255_is_valid_point(p); }

int csodium_ristretto255_add(uint8_t r[32], const uint8_t p[32], const uint8_t q[32]) {
    return crypto_core_ristretto255_add(r, p, q);
}

int csodium_ristretto255_sub(uint8_t r[32], const uint8_t p[32], const uint8_t q[32]) {
    return crypto_core_ristretto255_sub(r, p, q);
}

int csodium_ristretto255_from_hash(uint8_t p[32], const uint8_t h[64]) {
    return crypto_core_ristretto255_from_hash(p, h);
}

int csodium_scalarmult_ristretto255(uint8_t q[32], const uint8_t n[32], const uint8_t p[32]) {
    return crypto_scalarmult_ristretto255(q, n, p);
}

int csodium_scalarmult_ristretto255_base(uint8_t q[32], const uint8_t n[32]) {
    return crypto_scalarmult_ristretto255_base(q, n);
}

void csodium_ristretto255_scalar_random(uint8_t r[32]) { crypto_core_ristretto255_scalar_random(r); }

int csodium_ristretto255_scalar_invert(uint8_t r[32], const uint8_t s[32]) {
    return crypto_core_ristretto255_scalar_invert(r, s);
}

void csodium_ristretto255_scalar_reduce(uint8_t r[32], const uint8_t s[64]) {
    crypto_core_ristretto255_scalar_reduce(r, s);
}

void csodium_ristretto255_scalar_mul(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]) {
    crypto_core_ristretto255_scalar_mul(z, x, y);
}

void csodium_ristretto255_scalar_add(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]) {
    crypto_core_ristretto255_scalar_add(z, x, y);
}

void csodium_ristretto255_scalar_sub(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]) {
    crypto_core_ristretto255_scalar_sub(z, x, y);
}

int csodium_argon2id(uint8_t *out, size_t outlen, const uint8_t *passwd, size_t passwdlen,
                     const uint8_t salt[16], uint64_t iterations, size_t memory_bytes) {
    if (outlen < crypto_pwhash_BYTES_MIN || iterations < crypto_pwhash_argon2id_OPSLIMIT_MIN
        || memory_bytes < crypto_pwhash_argon2id_MEMLIMIT_MIN || memory_bytes > crypto_pwhash_argon2id_MEMLIMIT_MAX) {
        return -1;
    }
    static const char empty = 0;
    const char *pw = passwdlen == 0 ? &empty : (const char *)passwd;
    return crypto_pwhash(out, (unsigned long long)outlen, pw, (unsigned long long)passwdlen, salt,
                         (unsigned long long)iterations, memory_bytes, crypto_pwhash_ALG_ARGON2ID13);
}

uint64_t csodium_argon2id_iterations_min(void) { return crypto_pwhash_argon2id_OPSLIMIT_MIN; }
size_t csodium_argon2id_memory_min(void) { return crypto_pwhash_argon2id_MEMLIMIT_MIN; }
size_t csodium_argon2id_memory_max(void) { return crypto_pwhash_argon2id_MEMLIMIT_MAX; }

void csodium_memzero(void *p, size_t len) {
    if (p != NULL && len > 0) sodium_memzero(p, len);
}

int csodium_memcmp(const void *a, const void *b, size_t len) { return sodium_memcmp(a, b, len); }

void csodium_randombytes(void *buf, size_t len) {
    if (buf != NULL && len > 0) randombytes_buf(buf, len);
}
