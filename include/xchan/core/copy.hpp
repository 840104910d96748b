// Copies of message bytes into and out of ring memory, inline for small messages.
//
// Ring memory is 8-byte aligned and each payload starts on an 8-byte boundary, but a
// record is rarely line-aligned (a 64 B message is a 72-byte record), so 16- or 32-byte
// vector moves at those addresses keep crossing cache lines, and a load or store that
// spans two lines which the other core is also using costs more than two plain ones.
// copy_to_ring / copy_from_ring touch the ring only in aligned 8-byte words (the caller's
// side may be unaligned), and are inlined: an outlined call, or libc's vector moves, cost
// small messages much of their speed (docs/performance.md, "Copies in aligned words").
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace xchan::core {

static_assert(std::endian::native == std::endian::little, "the ring copies assume little-endian words");

/// Above this many bytes the copies go to libc's memcpy (a call, amortized).
inline constexpr std::size_t kInlineCopyBytes = 128;

namespace detail {
[[gnu::always_inline]] inline std::uint64_t load_word(const std::byte* p) noexcept {
  std::uint64_t w;
  __builtin_memcpy(&w, p, 8);
  return w;
}
[[gnu::always_inline]] inline void store_word(std::byte* p, std::uint64_t w) noexcept {
  __builtin_memcpy(p, &w, 8);
}
/// `words` 8-byte moves through general registers, four loads before four stores: the
/// empty asm keeps GCC from merging them into vector moves, which would cross lines again.
/// Keep the four-move step: the loop's shape changes the ring's and the channel's speeds
/// in opposite directions (docs/performance.md, "The 64 B ring against Boost").
[[gnu::always_inline]] inline void copy_words(std::byte* dst, const std::byte* src, std::size_t words) noexcept {
  std::size_t i = 0;
  for (; i + 4 <= words; i += 4) {
    std::uint64_t a = load_word(src + 8 * i);
    std::uint64_t b = load_word(src + 8 * i + 8);
    std::uint64_t c = load_word(src + 8 * i + 16);
    std::uint64_t d = load_word(src + 8 * i + 24);
    asm("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d));
    store_word(dst + 8 * i, a);
    store_word(dst + 8 * i + 8, b);
    store_word(dst + 8 * i + 16, c);
    store_word(dst + 8 * i + 24, d);
  }
  const auto move = [&](std::size_t at) {
    std::uint64_t w = load_word(src + 8 * at);
    asm("" : "+r"(w));
    store_word(dst + 8 * at, w);
  };
  switch (words - i) {  // 0 to 3 left
    case 3:
      move(i + 2);
      [[fallthrough]];
    case 2:
      move(i + 1);
      [[fallthrough]];
    case 1:
      move(i);
      break;
    default:
      break;
  }
}

/// What both directions share: libc above kInlineCopyBytes, single bytes below 8, else the
/// whole words. True when that was all; false leaves a 1-7 byte tail after `words` words.
[[gnu::always_inline]] inline bool copy_all_but_tail(std::byte* dst, const std::byte* src, std::size_t n,
                                                     std::size_t& words) noexcept {
  if (n > kInlineCopyBytes) {
    std::memcpy(dst, src, n);
    return true;
  }
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
    return true;
  }
  words = n / 8;
  copy_words(dst, src, words);
  return n % 8 == 0;
}
}  // namespace detail

/// Copies `n` bytes from `src` to ring memory at `ring` (8-byte aligned). May write up to
/// the next multiple of 8 past `n` (a record's padding); reads exactly [src, src + n).
[[gnu::always_inline]] inline void copy_to_ring(std::byte* ring, const std::byte* src, std::size_t n) noexcept {
  std::size_t words = 0;
  if (detail::copy_all_but_tail(ring, src, n, words)) return;
  // The last n % 8 bytes are the top of the 8 ending at n; shifted down, they fill the low
  // end of the next aligned ring word (the rest of it is padding).
  detail::store_word(ring + 8 * words, detail::load_word(src + n - 8) >> (8 * (8 - n % 8)));
}

/// Copies `n` bytes from ring memory at `ring` (8-byte aligned, readable up to the next
/// multiple of 8 past `n`) to `dst`; writes exactly [dst, dst + n).
[[gnu::always_inline]] inline void copy_from_ring(std::byte* dst, const std::byte* ring, std::size_t n) noexcept {
  std::size_t words = 0;
  if (detail::copy_all_but_tail(dst, ring, n, words)) return;
  // The 8 bytes ending at n, put together from the two aligned ring words they span.
  const std::size_t rest = n % 8;
  const std::uint64_t low = detail::load_word(ring + 8 * (words - 1));
  const std::uint64_t high = detail::load_word(ring + 8 * words);
  detail::store_word(dst + n - 8, (low >> (8 * rest)) | (high << (8 * (8 - rest))));
}

}  // namespace xchan::core
