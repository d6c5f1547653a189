// Test helper: builds zip archives byte by byte, including ones no well-behaved tool
// writes (special files, lying sizes, hostile names). Stored or "deflate" made of
// stored deflate blocks, so no compression library is needed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::registry::testing {

struct ZipEntry {
  ZipEntry(std::string n, std::string d = "", uint32_t mode = 0100644, bool deflated = false,
           std::optional<uint32_t> declared = std::nullopt)
      : name(std::move(n)), data(std::move(d)), unix_mode(mode), deflate(deflated),
        declared_size(declared) {}

  std::string name;
  std::string data;                       // file contents, or a symlink's target
  uint32_t unix_mode = 0100644;           // st_mode, type bits included
  bool deflate = false;                   // method 8 (stored deflate blocks) instead of 0
  std::optional<uint32_t> declared_size;  // uncompressed size to claim, if a lie
};

inline uint32_t crc32_of(const std::string& data) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// A raw deflate stream of uncompressed blocks holding data.
inline std::string stored_deflate(const std::string& data) {
  std::string out;
  size_t off = 0;
  do {
    size_t n = std::min<size_t>(65535, data.size() - off);
    bool last = off + n == data.size();
    out.push_back(last ? 1 : 0);
    out.push_back(char(n & 0xFF));
    out.push_back(char(n >> 8));
    out.push_back(char(~n & 0xFF));
    out.push_back(char((~n >> 8) & 0xFF));
    out.append(data, off, n);
    off += n;
  } while (off < data.size());
  return out;
}

inline void put16(std::string& s, uint32_t v) {
  s.push_back(char(v & 0xFF));
  s.push_back(char((v >> 8) & 0xFF));
}
inline void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}

inline std::string build_zip(const std::vector<ZipEntry>& entries) {
  std::string out, central;
  for (const ZipEntry& e : entries) {
    const std::string body = e.deflate ? stored_deflate(e.data) : e.data;
    const uint32_t crc = crc32_of(e.data);
    const uint32_t usize = e.declared_size.value_or(uint32_t(e.data.size()));
    const uint32_t offset = uint32_t(out.size());
    auto common = [&](std::string& s) {
      put16(s, 20);                   // version needed
      put16(s, 0x0800);               // flags: UTF-8 names
      put16(s, e.deflate ? 8 : 0);    // method
      put16(s, 0);                    // time
      put16(s, 0x21);                 // date: 1980-01-01
      put32(s, crc);
      put32(s, uint32_t(body.size()));
      put32(s, usize);
      put16(s, uint32_t(e.name.size()));
      put16(s, 0);                    // extra length
    };
    put32(out, 0x04034b50);
    common(out);
    out += e.name;
    out += body;
    put32(central, 0x02014b50);
    put16(central, (3 << 8) | 20);    // made by: Unix
    common(central);
    put16(central, 0);                // comment length
    put16(central, 0);                // disk
    put16(central, 0);                // internal attributes
    put32(central, e.unix_mode << 16);
    put32(central, offset);
    central += e.name;
  }
  const uint32_t cd_offset = uint32_t(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, uint32_t(entries.size()));
  put16(out, uint32_t(entries.size()));
  put32(out, uint32_t(central.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

}  // namespace kiln::registry::testing
