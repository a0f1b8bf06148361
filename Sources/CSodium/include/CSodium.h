#ifndef CSODIUM_H
#define CSODIUM_H

// The few libsodium functions QOPAQUE needs (ristretto255 group and scalar arithmetic, Argon2id,
// zeroization, constant-time comparison), behind fixed-size signatures. The header does not include
// <sodium.h>, so Swift sees only these names; CSodium.c is the one file that needs libsodium's headers.
//
// Linux (Debian): apt-get install libsodium-dev. Apple platforms: brew install libsodium, then build with
// -Xcc -I"$(brew --prefix)/include" -Xlinker -L"$(brew --prefix)/lib" (libsodium is not part of the SDK).

#include <stddef.h>
#include <stdint.h>

#define CSODIUM_RISTRETTO255_BYTES 32
#define CSODIUM_RISTRETTO255_HASHBYTES 64
#define CSODIUM_RISTRETTO255_SCALARBYTES 32
#define CSODIUM_RISTRETTO255_NONREDUCEDSCALARBYTES 64
#define CSODIUM_ARGON2ID_SALTBYTES 16

/// sodium_init: 0 on success (also when already initialized), -1 if libsodium cannot start.
int csodium_init(void);

/// 1 when `p` is the canonical encoding of a ristretto255 element (the identity included), else 0.
int csodium_ristretto255_is_valid_point(const uint8_t p[32]);
/// r = p + q; 0 on success, -1 if an input is not a valid encoding.
int csodium_ristretto255_add(uint8_t r[32], const uint8_t p[32], const uint8_t q[32]);
/// r = p - q; 0 on success, -1 if an input is not a valid encoding.
int csodium_ristretto255_sub(uint8_t r[32], const uint8_t p[32], const uint8_t q[32]);
/// The ristretto255 one-way map of 64 uniform bytes (hash_to_ristretto255 after expand_message). 0 on success.
int csodium_ristretto255_from_hash(uint8_t p[32], const uint8_t h[64]);
/// q = n * p; 0 on success, -1 if p is invalid or the result is the identity element.
int csodium_scalarmult_ristretto255(uint8_t q[32], const uint8_t n[32], const uint8_t p[32]);
/// q = n * G; 0 on success, -1 if the result is the identity element (n = 0 mod L).
int csodium_scalarmult_ristretto255_base(uint8_t q[32], const uint8_t n[32]);

/// A uniformly random non-zero scalar.
void csodium_ristretto255_scalar_random(uint8_t r[32]);
/// r = s^-1 mod L; 0 on success, -1 if s = 0.
int csodium_ristretto255_scalar_invert(uint8_t r[32], const uint8_t s[32]);
/// r = s mod L, s read as a 512-bit little-endian integer.
void csodium_ristretto255_scalar_reduce(uint8_t r[32], const uint8_t s[64]);
/// z = x * y mod L.
void csodium_ristretto255_scalar_mul(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]);
/// z = x + y mod L.
void csodium_ristretto255_scalar_add(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]);
/// z = x - y mod L.
void csodium_ristretto255_scalar_sub(uint8_t z[32], const uint8_t x[32], const uint8_t y[32]);

/// Argon2id v1.3 with parallelism 1 (libsodium's only lane count): `out` of `outlen` bytes from `passwd`
/// and a 16-byte salt, `iterations` passes over `memory_bytes` of memory. 0 on success, -1 on failure
/// (parameters out of range, or the memory could not be allocated).
int csodium_argon2id(uint8_t *out, size_t outlen, const uint8_t *passwd, size_t passwdlen,
                     const uint8_t salt[16], uint64_t iterations, size_t memory_bytes);
/// The smallest and largest `iterations` and `memory_bytes` csodium_argon2id accepts.
uint64_t csodium_argon2id_iterations_min(void);
size_t csodium_argon2id_memory_min(void);
size_t csodium_argon2id_memory_max(void);

/// Overwrites `len` bytes at `p` with zeros in a way the compiler keeps.
void csodium_memzero(void *p, size_t len);
/// Constant-time comparison of `len` bytes: 0 when equal, -1 otherwise.
int csodium_memcmp(const void *a, const void *b, size_t len);
/// Fills `buf` with `len` bytes from the operating system's CSPRNG.
void csodium_randombytes(void *buf, size_t len);

#endif
