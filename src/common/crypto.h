// Hashing, MACs and encodings used across Kiln (SigV4, code identity, tokens).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::crypto {

// Raw 32-byte SHA-256 digest of data.
std::string sha256(std::string_view data);
// Raw 32-byte HMAC-SHA256 of data under key.
std::string hmac_sha256(std::string_view key, std::string_view data);

std::string hex(std::string_view raw);  // lower-case
std::string base64(std::string_view raw);
// Decodes standard base64 (padding optional, no whitespace). False on bad input.
bool base64_decode(std::string_view text, std::string* out);

// n cryptographically random bytes.
std::string random_bytes(size_t n);
// Random string of n characters from alphabet.
std::string random_string(size_t n, std::string_view alphabet);

// n random bytes from a per-thread generator seeded from random_bytes(): for
// identifiers that must be unique and unguessable in practice (request ids, trace ids),
// not for secrets. Cheap: no system call.
std::string fast_random_bytes(size_t n);

// Constant-time comparison, for secrets and signatures.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace kiln::crypto
