// Test helper: a ring over a heap buffer, plus byte-pattern helpers that make corruption
// and misordering visible.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan::test {

/// Fills `out` with a pattern derived from `seed` (so the reader can verify every byte).
inline void fill_pattern(std::span<std::byte> out, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
}

inline std::vector<std::byte> pattern(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> v(n);
  fill_pattern(v, seed);
  return v;
}

inline bool matches_pattern(std::span<const std::byte> in, std::uint64_t seed) {
  const std::vector<std::byte> expected = pattern(in.size(), seed);
  return in.empty() || std::memcmp(in.data(), expected.data(), in.size()) == 0;
}

/// An SPSC ring over its own 8-byte-aligned heap buffer.
struct OwnedRing {
  OwnedRing(std::size_t data_bytes, std::uint64_t max_records) : data(data_bytes / 8) {
    status = core::SpscByteRing::init(header, bytes(), max_records);
    if (status == Status::kOk) status = ring.attach(header, bytes());
  }
  std::span<std::byte> bytes() { return std::as_writable_bytes(std::span<std::uint64_t>(data)); }

  core::RingHeader header{};
  std::vector<std::uint64_t> data;
  core::SpscByteRing ring;
  Status status = Status::kInvalidArgument;
};

}  // namespace xchan::test
