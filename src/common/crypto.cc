#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

namespace kiln::crypto {

namespace {

// Fetched once: OpenSSL 3's implicit fetch takes a lock on every call.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// Hashes the concatenation of parts into out (32 bytes).
void sha256_parts(std::initializer_list<std::string_view> parts, unsigned char* out) {
  thread_local EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  // SAFETY: ctx is this thread's own; out has room for a SHA-256 digest (32 bytes).
  EVP_DigestInit_ex(ctx, sha256_md(), nullptr);
  for (std::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  EVP_DigestFinal_ex(ctx, out, &len);
}

}  // namespace

std::string sha256(std::string_view data) {
  unsigned char out[32];
  sha256_parts({data}, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

// HMAC (RFC 2104) over SHA-256, built on the cached digest.
std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char block[64] = {};
  if (key.size() > sizeof block) {
    sha256_parts({key}, block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char ipad[64], opad[64];
  for (size_t i = 0; i < sizeof block; ++i) {
    ipad[i] = block[i] ^ 0x36;
    opad[i] = block[i] ^ 0x5c;
  }
  unsigned char inner[32], outer[32];
  sha256_parts({std::string_view(reinterpret_cast<char*>(ipad), 64), data}, inner);
  sha256_parts({std::string_view(reinterpret_cast<char*>(opad), 64),
                std::string_view(reinterpret_cast<char*>(inner), 32)},
               outer);
  return std::string(reinterpret_cast<char*>(outer), sizeof outer);
}

std::string hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string base64(std::string_view raw) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    uint32_t v = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8) | uint8_t(raw[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i + 1 == raw.size()) {
    uint32_t v = uint8_t(raw[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == raw.size()) {
    uint32_t v = (uint8_t(raw[i]) << 16) | (uint8_t(raw[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

bool base64_decode(std::string_view text, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out->clear();
  out->reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(char((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  // SAFETY: out has exactly n writable bytes.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");  // no entropy: nothing sane to do
  }
  return out;
}

std::string random_string(size_t n, std::string_view alphabet) {
  std::string raw = random_bytes(n);
  std::string out;
  out.reserve(n);
  for (unsigned char c : raw) out.push_back(alphabet[c % alphabet.size()]);
  return out;
}

std::string fast_random_bytes(size_t n) {
  // xoshiro256** seeded per thread from the kernel's generator.
  struct Xoshiro {
    uint64_t s[4];
    Xoshiro() {
      std::string seed = random_bytes(sizeof s);
      std::memcpy(s, seed.data(), sizeof s);
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
      uint64_t result = rotl(s[1] * 5, 7) * 9;
      uint64_t t = s[1] << 17;
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = rotl(s[3], 45);
      return result;
    }
  };
  thread_local Xoshiro rng;
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng.next();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace kiln::crypto
