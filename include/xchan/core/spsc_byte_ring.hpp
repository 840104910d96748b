// A single-producer/single-consumer ring of variable-length byte records over memory it
// is given (a heap block today, a shared-memory segment later). Bounded by bytes and by a
// record count. Non-blocking: blocking is composed on top by the channel layer.
//
// Design:
//  - RingHeader is the shared state: standard-layout, trivially copyable, no pointers.
//    `tail`/`pushed` are written only by the producer, `head`/`popped` only by the
//    consumer, each pair on its own 128-byte line.
//  - SpscByteRing is one process's view of a ring: bounds copied from the header once
//    (validated), plus each side's cached copy of the other side's index, so the hot path
//    reads the other side's line only when the cached copy says the ring is full/empty.
//  - A record is an 8-byte RecordHeader then the payload, padded to 8 bytes. Payloads are
//    always contiguous: a record that would cross the end is preceded by a padding record
//    that fills the rest of the buffer. Hence the largest payload is half the buffer
//    minus a header, which guarantees that any admissible record fits an empty ring.
//  - Hot window: when the producer passes the first kHotWindowBytes of a larger buffer and
//    the consumer has caught up, it wraps early (with a padding record) instead of walking
//    the whole buffer. Small-message traffic then stays in a cache-sized, already-faulted
//    region, while backlogs and large messages still get the full buffer.
//  - Indices are byte counts since creation (never wrap in practice: 2^64 bytes); the
//    offset in the buffer is index & (data_bytes - 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "xchan/core/atomic_field.hpp"
#include "xchan/core/status.hpp"

namespace xchan::core {

/// Shared state of one ring. Lives at the start of the ring's memory or inside a larger
/// shared header. Initialize with SpscByteRing::init before any use.
struct RingHeader {
  std::uint64_t magic;        // kRingMagic once initialized
  std::uint32_t version;      // kRingVersion
  std::uint32_t reserved;
  std::uint64_t data_bytes;   // size of the record buffer, a power of two
  std::uint64_t max_records;  // at most this many records in flight

  // Producer-owned line: written by the producer only, read by the consumer.
  alignas(kCacheLine) std::uint64_t tail;  // bytes ever published
  std::uint64_t pushed;                    // records ever published

  // Consumer-owned line: written by the consumer only, read by the producer.
  alignas(kCacheLine) std::uint64_t head;  // bytes ever released
  std::uint64_t popped;                    // records ever released
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(std::is_trivially_copyable_v<RingHeader>);
static_assert(offsetof(RingHeader, head) - offsetof(RingHeader, tail) >= kCacheLine);

/// The header that precedes each record's payload in the buffer.
struct alignas(8) RecordHeader {
  std::uint32_t size;  // payload bytes (data) or bytes skipped after the header (padding)
  std::uint32_t kind;  // one of the kRecord* tags below
};
static_assert(std::is_standard_layout_v<RecordHeader>);
static_assert(std::is_trivially_copyable_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 8);

inline constexpr std::uint64_t kRingMagic = 0x676e'6952'6e61'6878ULL;  // "xhanRing"
inline constexpr std::uint32_t kRingVersion = 1;
// Tags carry a fixed high half so that garbage is unlikely to pass as a record.
inline constexpr std::uint32_t kRecordData = 0x7863'00d1U;
inline constexpr std::uint32_t kRecordPadding = 0x7863'00a7U;

class SpscByteRing {
 public:
  static constexpr std::size_t kRecordHeaderBytes = sizeof(RecordHeader);
  static constexpr std::size_t kMinDataBytes = 64;
  static constexpr std::uint64_t kHotWindowBytes = 256 * 1024;

  /// Smallest power-of-two buffer whose largest payload is at least `max_payload`.
  [[nodiscard]] static std::uint64_t data_bytes_for_payload(std::uint64_t max_payload) noexcept;

  /// Largest payload a buffer of `data_bytes` accepts.
  [[nodiscard]] static constexpr std::uint64_t max_payload_for(std::uint64_t data_bytes) noexcept {
    return data_bytes / 2 - kRecordHeaderBytes;
  }

  /// Lays out a fresh, empty ring. `data` must be 8-byte aligned with a power-of-two size
  /// >= kMinDataBytes and `max_records` >= 1. Not thread-safe: call before any other side
  /// uses the ring. Returns kInvalidArgument when a precondition fails.
  [[nodiscard]] static Status init(RingHeader& header, std::span<std::byte> data,
                                   std::uint64_t max_records) noexcept;

  /// True when a payload of `n` bytes would fit right now (same arithmetic as try_reserve,
  /// with fresh indices). For waiting on room without taking it. Any thread.
  [[nodiscard]] bool can_reserve(std::size_t n) const noexcept;

  /// True when at least one record is published and not yet released. Any thread.
  [[nodiscard]] bool has_records() const noexcept {
    // Acquire: pairs with Writer::publish, like try_peek (SYNC POINT ring-publish).
    return atomic_load(header_->tail, std::memory_order_acquire) !=
           atomic_load(header_->head, std::memory_order_relaxed);
  }

  /// Attaches a view to an initialized ring, validating the header against `data`.
  /// Returns kCorrupted when the header does not describe `data`.
  [[nodiscard]] Status attach(RingHeader& header, std::span<std::byte> data) noexcept;

  SpscByteRing() = default;
  SpscByteRing(const SpscByteRing&) = delete;
  SpscByteRing& operator=(const SpscByteRing&) = delete;

  /// Producer-side batch cursor. Reserve, fill, commit any number of records, then
  /// publish() once (also done by the destructor): the consumer sees all of them together
  /// and the shared tail line is written once per batch. Producer thread only; wait-free.
  class Writer {
   public:
    explicit Writer(SpscByteRing& ring) noexcept
        : ring_(ring), tail_(atomic_load(ring.header_->tail, std::memory_order_relaxed)),
          pushed_(atomic_load(ring.header_->pushed, std::memory_order_relaxed)),
          published_tail_(tail_) {}
    ~Writer() { publish(); }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    /// Reserves room for a payload of `n` bytes; on kOk `out` is writable memory of
    /// exactly n bytes. kFull when the ring has no room (records or bytes) right now,
    /// kTooLarge when n can never fit. At most one reservation is open at a time.
    [[nodiscard]] Status try_reserve(std::size_t n, std::span<std::byte>& out) noexcept;

    /// Closes the open reservation, keeping its first `used` (<= reserved) bytes.
    void commit(std::size_t used) noexcept;

    /// Makes the committed records visible to the consumer.
    void publish() noexcept;

    /// Records committed by this cursor and not yet published.
    [[nodiscard]] std::uint64_t unpublished() const noexcept {
      return pushed_ - atomic_load(ring_.header_->pushed, std::memory_order_relaxed);
    }

   private:
    SpscByteRing& ring_;
    std::uint64_t tail_;    // where the next record goes (includes unpublished records)
    std::uint64_t pushed_;  // records committed (includes unpublished records)
    std::uint64_t published_tail_;
    std::uint64_t reserved_at_ = 0;     // tail_ when the open reservation was made
    std::uint64_t reserved_pad_ = 0;    // padding before the open reservation
    std::size_t reserved_size_ = 0;
    bool open_ = false;
  };

  /// Consumer-side batch cursor: peek a record, use its bytes, release it; release()d
  /// space goes back to the producer on publish() (also done by the destructor).
  /// Consumer thread only; wait-free.
  class Reader {
   public:
    explicit Reader(SpscByteRing& ring) noexcept
        : ring_(ring), head_(atomic_load(ring.header_->head, std::memory_order_relaxed)),
          popped_(atomic_load(ring.header_->popped, std::memory_order_relaxed)),
          published_head_(head_) {}
    ~Reader() { publish(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    /// Views the oldest record's payload without consuming it. kEmpty when there is none,
    /// kCorrupted when the shared memory holds something that is not a valid record.
    /// The view stays valid until release() or publish().
    [[nodiscard]] Status try_peek(std::span<const std::byte>& out) noexcept;

    /// Consumes the record returned by the last successful try_peek.
    void release() noexcept;

    /// Returns released space to the producer.
    void publish() noexcept;

   private:
    SpscByteRing& ring_;
    std::uint64_t head_;
    std::uint64_t popped_;
    std::uint64_t published_head_;
    std::uint64_t next_head_ = 0;  // head_ after releasing the peeked record
    bool peeked_ = false;
  };

  /// Copies one message in and publishes it. Producer thread only; wait-free.
  [[nodiscard]] Status try_push(std::span<const std::byte> payload) noexcept {
    Writer w(*this);
    std::span<std::byte> out;
    const Status s = w.try_reserve(payload.size(), out);
    if (s != Status::kOk) return s;
    if (!payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
    w.commit(payload.size());
    return Status::kOk;
  }

  /// Copies the oldest message into `dst` and consumes it; `n` gets its size. kTooLarge
  /// (nothing consumed, `n` set) when dst is smaller. Consumer thread only; wait-free.
  [[nodiscard]] Status try_pop(std::span<std::byte> dst, std::size_t& n) noexcept {
    Reader r(*this);
    std::span<const std::byte> in;
    const Status s = r.try_peek(in);
    if (s != Status::kOk) return s;
    n = in.size();
    if (in.size() > dst.size()) return Status::kTooLarge;
    if (!in.empty()) std::memcpy(dst.data(), in.data(), in.size());
    r.release();
    return Status::kOk;
  }

  /// Records in flight as seen now; exact only when both sides are quiescent. Any thread.
  [[nodiscard]] std::uint64_t size_approx() const noexcept {
    const std::uint64_t popped = atomic_load(header_->popped, std::memory_order_relaxed);
    const std::uint64_t pushed = atomic_load(header_->pushed, std::memory_order_relaxed);
    return pushed >= popped ? pushed - popped : 0;
  }
  /// Bytes (headers and padding included) in flight as seen now. Any thread.
  [[nodiscard]] std::uint64_t bytes_approx() const noexcept {
    const std::uint64_t head = atomic_load(header_->head, std::memory_order_relaxed);
    const std::uint64_t tail = atomic_load(header_->tail, std::memory_order_relaxed);
    return tail >= head ? tail - head : 0;
  }
  [[nodiscard]] std::uint64_t pushed() const noexcept {
    return atomic_load(header_->pushed, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t popped() const noexcept {
    return atomic_load(header_->popped, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t data_bytes() const noexcept { return data_bytes_; }
  [[nodiscard]] std::uint64_t max_records() const noexcept { return max_records_; }
  [[nodiscard]] std::uint64_t max_payload() const noexcept { return max_payload_; }

 private:
  static constexpr std::uint64_t record_bytes(std::uint64_t payload) noexcept {
    return kRecordHeaderBytes + ((payload + 7) & ~std::uint64_t{7});
  }
  void write_header(std::uint64_t index, std::uint32_t size, std::uint32_t kind) noexcept {
    const RecordHeader h{size, kind};
    std::memcpy(data_ + (index & mask_), &h, sizeof h);
  }

  // Read-mostly view state, shared by both sides.
  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t data_bytes_ = 0;
  std::uint64_t mask_ = 0;
  std::uint64_t max_records_ = 0;
  std::uint64_t max_payload_ = 0;
  std::uint64_t hot_window_ = 0;

  // Producer-local: its cached copies of the consumer's indices (stale copies only ever
  // under-estimate free space, so they are safe).
  alignas(kCacheLine) std::uint64_t cached_head_ = 0;
  std::uint64_t cached_popped_ = 0;

  // Consumer-local: its cached copy of the producer's tail.
  alignas(kCacheLine) std::uint64_t cached_tail_ = 0;
};

// ---- hot path, inline ------------------------------------------------------------------

inline Status SpscByteRing::Writer::try_reserve(std::size_t n, std::span<std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  if (n > r.max_payload_) return Status::kTooLarge;
  const std::uint64_t need = record_bytes(n);
  const std::uint64_t offset = tail_ & r.mask_;
  const std::uint64_t contiguous = r.data_bytes_ - offset;
  std::uint64_t pad = need > contiguous ? contiguous : 0;
  if (pad == 0 && offset < r.hot_window_ && offset + need > r.hot_window_ && offset != 0) {
    // Crossing the hot window's end: wrap early if the consumer has caught up far enough
    // that the padding costs no room we need (one head refresh per lap at most). Past the
    // window (a backlog pushed us there) we run on to the real end.
    if (tail_ + contiguous + need - r.cached_head_ > r.data_bytes_) {
      r.cached_head_ = atomic_load(r.header_->head, std::memory_order_acquire);  // ring-reclaim
    }
    if (tail_ + contiguous + need - r.cached_head_ <= r.data_bytes_) pad = contiguous;
  }
  const std::uint64_t total = pad + need;
  if (tail_ + total - r.cached_head_ > r.data_bytes_) {
    // SYNC POINT ring-reclaim (acquire): pairs with Reader::publish's release of head, so
    // the consumer has finished reading the bytes we are about to overwrite.
    r.cached_head_ = atomic_load(r.header_->head, std::memory_order_acquire);
    if (tail_ + total - r.cached_head_ > r.data_bytes_) return Status::kFull;
  }
  if (pushed_ - r.cached_popped_ >= r.max_records_) {
    // Relaxed: the record count guards no memory; the bytes are guarded by head above.
    r.cached_popped_ = atomic_load(r.header_->popped, std::memory_order_relaxed);
    if (pushed_ - r.cached_popped_ >= r.max_records_) return Status::kFull;
  }
  reserved_at_ = tail_;
  reserved_pad_ = pad;
  reserved_size_ = n;
  open_ = true;
  out = std::span<std::byte>(r.data_ + ((tail_ + pad) & r.mask_) + kRecordHeaderBytes, n);
  return Status::kOk;
}

inline void SpscByteRing::Writer::commit(std::size_t used) noexcept {
  if (!open_) return;
  SpscByteRing& r = ring_;
  if (used > reserved_size_) used = reserved_size_;
  if (reserved_pad_ != 0) {
    r.write_header(reserved_at_, static_cast<std::uint32_t>(reserved_pad_ - kRecordHeaderBytes),
                   kRecordPadding);
  }
  r.write_header(reserved_at_ + reserved_pad_, static_cast<std::uint32_t>(used), kRecordData);
  tail_ = reserved_at_ + reserved_pad_ + record_bytes(used);
  ++pushed_;
  open_ = false;
}

inline void SpscByteRing::Writer::publish() noexcept {
  if (tail_ == published_tail_) return;
  // Relaxed: `pushed` is a count for sizing and stats; ordering comes from `tail`.
  atomic_store(ring_.header_->pushed, pushed_, std::memory_order_relaxed);
  // SYNC POINT ring-publish (release): pairs with Reader::try_peek's acquire of tail, so
  // the record headers and payloads written above are visible before the consumer reads.
  atomic_store(ring_.header_->tail, tail_, std::memory_order_release);
  published_tail_ = tail_;
}

inline Status SpscByteRing::Reader::try_peek(std::span<const std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  std::uint64_t head = head_;
  // At most two iterations: a padding record is always followed by a data record.
  for (int step = 0; step < 2; ++step) {
    if (head == r.cached_tail_) {
      // SYNC POINT ring-publish (acquire): pairs with Writer::publish's release of tail.
      r.cached_tail_ = atomic_load(r.header_->tail, std::memory_order_acquire);
      if (head == r.cached_tail_) return step == 0 ? Status::kEmpty : Status::kCorrupted;
    }
    const std::uint64_t available = r.cached_tail_ - head;
    const std::uint64_t offset = head & r.mask_;
    if (available > r.data_bytes_ || available < kRecordHeaderBytes) return Status::kCorrupted;
    RecordHeader h;
    std::memcpy(&h, r.data_ + offset, sizeof h);
    if (h.kind == kRecordPadding) {
      // Padding always runs to the end of the buffer.
      if (step != 0 || offset + kRecordHeaderBytes + h.size != r.data_bytes_ ||
          kRecordHeaderBytes + std::uint64_t{h.size} > available) {
        return Status::kCorrupted;
      }
      head += kRecordHeaderBytes + h.size;
      continue;
    }
    const std::uint64_t len = record_bytes(h.size);
    if (h.kind != kRecordData || h.size > r.max_payload_ || len > available ||
        offset + len > r.data_bytes_) {
      return Status::kCorrupted;
    }
    out = std::span<const std::byte>(r.data_ + offset + kRecordHeaderBytes, h.size);
    next_head_ = head + len;
    peeked_ = true;
    return Status::kOk;
  }
  return Status::kCorrupted;
}

inline void SpscByteRing::Reader::release() noexcept {
  if (!peeked_) return;
  head_ = next_head_;
  ++popped_;
  peeked_ = false;
}

inline void SpscByteRing::Reader::publish() noexcept {
  if (head_ == published_head_) return;
  // Relaxed: `popped` guards no memory (see Writer::try_reserve).
  atomic_store(ring_.header_->popped, popped_, std::memory_order_relaxed);
  // SYNC POINT ring-reclaim (release): pairs with Writer::try_reserve's acquire of head;
  // all reads of the released records happen before the producer may overwrite them.
  atomic_store(ring_.header_->head, head_, std::memory_order_release);
  published_head_ = head_;
}

}  // namespace xchan::core
