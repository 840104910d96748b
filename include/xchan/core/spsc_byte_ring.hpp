// A single-producer/single-consumer ring of variable-length byte records over memory it
// is given (a heap block today, a shared-memory segment later). Bounded by bytes and by a
// record count. Non-blocking: blocking is composed on top by the channel layer.
//
// Design:
//  - RingHeader is the shared state: standard-layout, trivially copyable, no pointers.
//    `tail`/`pushed`/`pushed_bytes` are written only by the producer, `head`/`popped`/
//    `popped_bytes` only by the consumer; each side's counters share one 128-byte line,
//    apart from the other side's.
//  - SpscByteRing is one process's view of a ring: bounds copied from the header once
//    (validated), plus each side's cached copy of the other side's index, so the hot path
//    reads the other side's line only when the cached copy says the ring is full/empty.
//  - A record is an 8-byte header word then the payload, padded to 8 bytes. Payloads are
//    always contiguous: a record that would cross the end is preceded by a padding record
//    that fills the rest of the buffer. Hence the largest payload is half the buffer
//    minus a header, which guarantees that any admissible record fits an empty ring.
//  - Each record is published by its own header word, stored last with release: it holds
//    the payload size and a stamp derived from the record's index. The consumer polls the
//    word at its head, never the producer's `tail` line, so in steady state only the
//    record's own lines move between cores (polling `tail` made the two sides fight over
//    one line: docs/performance.md, "Records publish themselves"). A stale word from an earlier
//    lap, or zeroed memory, carries another stamp and reads as "not yet written".
//    `tail` is still published, for sizing, statistics and corruption checks.
//  - Early wrap: in a buffer larger than kHotWindowBytes, the producer goes back to offset
//    0 (with a padding record) at the next window-sized boundary if the consumer has
//    taken enough for the padding to cost no room, and a large record (>=
//    kLargeRecordBytes) whenever that room is free, so that a stream cycles through a
//    window or two instead of walking a cold buffer. The catch: after a wrap at offset X,
//    a burst that nobody receives meanwhile can fill only the front up to where the
//    consumer stopped (a 64 MiB channel once took 256 KiB after a 1 KB round trip, then
//    blocked a thread that sends everything before receiving). undo_wrap() gives that
//    room back: with the consumer kept out, it moves the records written at the front
//    since the wrap to where the padding began, so the buffer is one run again, and early
//    wraps wait until the consumer moves. The channel calls it for a sender that found no
//    room and waited in vain (or may not wait).
//  - Indices are byte counts since creation (never wrap in practice: 2^64 bytes); the
//    offset in the buffer is index & (data_bytes - 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "xchan/core/atomic_field.hpp"
#include "xchan/core/copy.hpp"
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

  // One line per side. `tail`/`pushed`/`pushed_bytes` are written by the producer only,
  // `head`/`popped`/`popped_bytes` by the consumer only; the other side reads them only to
  // refresh its cached copy (or for statistics), so each line stays with its writer in
  // steady state. Each side stores all three per publish: one line, not two.
  // `pushed_bytes - popped_bytes` is the bytes of the records in flight; `tail - head` also
  // counts the padding a wrap leaves (room, but no record).
  alignas(kCacheLine) std::uint64_t tail;  // bytes ever published, padding included
  std::uint64_t pushed;                    // records ever published
  std::uint64_t pushed_bytes;              // their bytes (record_bytes), no padding
  std::uint64_t padded_at;                 // index of the latest padding record (0: none)
  std::uint64_t hold_wraps_at;             // no early wrap while head is here (0: none)
  std::uint64_t wraps_undone;              // times undo_wrap() moved records back
  std::uint64_t high_water_records;        // most records seen in flight (see high_water)
  std::uint64_t high_water_bytes;          // most record bytes seen in flight
  alignas(kCacheLine) std::uint64_t head;  // bytes ever released, padding included
  std::uint64_t popped;                    // records ever released
  std::uint64_t popped_bytes;              // their bytes, no padding
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(std::is_trivially_copyable_v<RingHeader>);
static_assert(offsetof(RingHeader, head) - offsetof(RingHeader, tail) >= kCacheLine);

/// The header word that precedes each record's payload in the buffer: low 32 bits the
/// payload size (bit 31 set for a padding record, whose "payload" is skipped), high 32
/// bits the stamp of the index the record starts at. Stored and loaded atomically.
using RecordWord = std::uint64_t;
inline constexpr std::uint32_t kPaddingFlag = 0x8000'0000U;

/// The stamp a record starting at `index` carries; never 0, so zeroed memory is no record.
/// Unique across laps while the buffer is smaller than 2^35 bytes.
[[nodiscard]] constexpr std::uint32_t record_stamp(std::uint64_t index) noexcept {
  return static_cast<std::uint32_t>((index >> 3) + 1);
}
[[nodiscard]] constexpr RecordWord record_word(std::uint64_t index, std::uint32_t size_and_flag) noexcept {
  return (RecordWord{record_stamp(index)} << 32) | size_and_flag;
}

inline constexpr std::uint64_t kRingMagic = 0x676e'6952'6e61'6878ULL;  // "xhanRing"
inline constexpr std::uint32_t kRingVersion = 5;

class SpscByteRing {
 public:
  static constexpr std::size_t kRecordHeaderBytes = sizeof(RecordWord);
  static constexpr std::size_t kMinDataBytes = 64;
  static constexpr std::uint64_t kHotWindowBytes = 256 * 1024;
  /// Records at least this large go back to offset 0 whenever that room is free.
  static constexpr std::uint64_t kLargeRecordBytes = 64 * 1024;

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

  /// True when room for a payload of `n` is held back by a wrap the consumer has not
  /// reached yet, and undo_wrap() would free it. A hint for a producer about to give up or
  /// wait: the indices may move meanwhile. Any thread.
  [[nodiscard]] bool stranded(std::size_t n) const noexcept;

  /// Undoes the latest wrap if the consumer has not reached its padding: moves the records
  /// written at the front since then to where the padding began (new stamps, the old words
  /// zeroed), so the records in flight are one run again and the whole buffer is room for
  /// the producer; early wraps then wait until the consumer moves. True when it moved
  /// records. The caller must be the producer and must keep every consumer out until it
  /// returns: the consumer may be anywhere before the padding, and the move rewrites it.
  bool undo_wrap() noexcept;

  /// Rebuilds the producer's shared state from the records themselves, after a producer
  /// or consumer died between two of its stores (a batch whose records were sealed but
  /// whose `tail` was not published; `popped` stored but not `head`): `tail` becomes the
  /// end of the valid records from `head` on, and `pushed`/`pushed_bytes` are set so that
  /// the counts in flight match them. A record whose word was never stored (the one being
  /// written) is not among them, so it is never delivered. The caller holds both sides,
  /// and undo_wrap() must not have been cut short (callers that may die do not use it).
  void repair() noexcept;

  /// True when `tail` shows records not yet released: a hint for waiters (another
  /// consumer may take them first; a record committed in a producer's open batch shows only
  /// once the batch publishes, and the channel notifies after that). It reads the two
  /// indices, never record memory, which a stale head could point into. Any thread.
  [[nodiscard]] bool has_records() const noexcept {
    // Acquire: SYNC POINT tail-publish, as in Reader::verify_empty.
    return atomic_load(header_->tail, std::memory_order_acquire) >
           atomic_load(header_->head, std::memory_order_relaxed);
  }

  /// Attaches a view to an initialized ring, validating the header against `data`.
  /// Returns kCorrupted when the header does not describe `data`.
  [[nodiscard]] Status attach(RingHeader& header, std::span<std::byte> data) noexcept;

  SpscByteRing() = default;
  SpscByteRing(const SpscByteRing&) = delete;
  SpscByteRing& operator=(const SpscByteRing&) = delete;

  /// Producer-side batch cursor. Reserve, fill, commit any number of records, then
  /// publish() once (also done by the destructor). Each record is visible to the consumer
  /// as soon as it is committed; publish() updates the shared `tail` and record counts
  /// (room accounting, statistics) once per batch. Producer thread only; wait-free.
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

    /// Publishes `tail` and the record counts for the records committed so far.
    void publish() noexcept;

    /// Records committed by this cursor and not yet published.
    [[nodiscard]] std::uint64_t unpublished() const noexcept {
      return pushed_ - atomic_load(ring_.header_->pushed, std::memory_order_relaxed);
    }

   private:
    // Bytes of the records committed so far, this batch's included (no padding). Counted
    // per batch, not per record: the batch's share is its span of `tail` less its padding.
    [[nodiscard]] std::uint64_t pushed_bytes() const noexcept {
      return atomic_load(ring_.header_->pushed_bytes, std::memory_order_relaxed) + (tail_ - published_tail_) - padded_;
    }
    // try_reserve's general case: padding, early wrap, large records, index refreshes.
    [[nodiscard]] Status reserve_slow(std::size_t n, std::span<std::byte>& out) noexcept;
    // Opens the reservation of a payload of `n` bytes after `pad` bytes of padding at tail_;
    // returns where the payload goes.
    std::span<std::byte> open_reservation(std::uint64_t pad, std::size_t n) noexcept {
      reserved_at_ = tail_;
      reserved_pad_ = pad;
      reserved_size_ = n;
      open_ = true;
      return {ring_.data_ + ((tail_ + pad) & ring_.mask_) + kRecordHeaderBytes, n};
    }

    SpscByteRing& ring_;
    std::uint64_t tail_;    // where the next record goes (includes unpublished records)
    std::uint64_t pushed_;  // records committed (includes unpublished records)
    std::uint64_t published_tail_;
    std::uint64_t padded_ = 0;          // padding committed since published_tail_
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

    /// Views the oldest record's payload without consuming it (a padding record in front
    /// of it is passed for good). kEmpty when there is none, kCorrupted when the shared
    /// memory holds something that is not a valid record. The view stays valid until
    /// release() or publish().
    [[nodiscard]] Status try_peek(std::span<const std::byte>& out) noexcept;

    /// After try_peek said kEmpty: checks the producer's `tail` to tell a truly empty ring
    /// (kEmpty) from one whose next record was overwritten with garbage (kCorrupted). Costs
    /// one read of the producer's line, so it is for the path that is about to wait.
    [[nodiscard]] Status verify_empty() noexcept;

    /// Consumes the record returned by the last successful try_peek.
    void release() noexcept;

    /// Returns released space to the producer.
    void publish() noexcept;

   private:
    // try_peek's other cases, given the word at head_: nothing there yet (kEmpty), a
    // padding record (passed for good, then the record after it is peeked) or garbage.
    [[nodiscard]] Status peek_past(RecordWord word, std::span<const std::byte>& out) noexcept;

    SpscByteRing& ring_;
    std::uint64_t head_;
    std::uint64_t popped_;
    std::uint64_t published_head_;
    std::uint64_t skipped_ = 0;    // padding passed since published_head_
    std::uint64_t next_head_ = 0;  // head_ after releasing the peeked record
    bool peeked_ = false;
  };

  /// Copies one message in and publishes it. Producer thread only; wait-free.
  [[nodiscard]] Status try_push(std::span<const std::byte> payload) noexcept {
    return try_push_with(payload.size(), CopyIn{payload});
  }

  /// Reserves `n` bytes, lets fill(std::span<std::byte>) -> size_t write the message in
  /// place (returning the bytes used, <= n) and publishes it: a one-record Writer batch.
  /// The common case runs inline without a Writer (the cursor object cost a 64 B message
  /// about 4 ns). Producer thread only; wait-free.
  template <class Fill>
  [[nodiscard]] Status try_push_with(std::size_t n, Fill&& fill) noexcept(
      noexcept(fill(std::span<std::byte>{}))) {
    const std::uint64_t tail = atomic_load(header_->tail, std::memory_order_relaxed);
    const std::uint64_t pushed = atomic_load(header_->pushed, std::memory_order_relaxed);
    if (fits_fast(tail, pushed, n, record_bytes(n))) [[likely]] {
      std::size_t used = fill(std::span<std::byte>(data_ + (tail & mask_) + kRecordHeaderBytes, n));
      if (used > n) used = n;
      const std::uint64_t next = tail + record_bytes(used);
      seal_record(tail, next, static_cast<std::uint32_t>(used));
      const std::uint64_t bytes = atomic_load(header_->pushed_bytes, std::memory_order_relaxed) + (next - tail);
      publish_tail(next, pushed + 1, bytes);
      check_filled(next, pushed + 1, bytes, record_bytes(n));
      return Status::kOk;
    }
    Writer w(*this);
    std::span<std::byte> out;
    const Status s = w.try_reserve(n, out);
    if (s != Status::kOk) return s;
    w.commit(fill(out));
    return Status::kOk;
  }

  /// Copies the oldest message into `dst` and consumes it; `n` gets its size. kTooLarge
  /// (nothing consumed, `n` set) when dst is smaller. Consumer thread only; wait-free.
  [[nodiscard]] Status try_pop(std::span<std::byte> dst, std::size_t& n) noexcept {
    const std::uint64_t head = atomic_load(header_->head, std::memory_order_relaxed);
    // SYNC POINT record-publish (acquire), as in Reader::try_peek.
    const RecordWord word = atomic_load(word_at(head), std::memory_order_acquire);
    std::uint64_t len = 0;
    if (is_data_record(head, word, len)) [[likely]] {  // the Reader's work inline
      n = static_cast<std::uint32_t>(word);
      if (n > dst.size()) return Status::kTooLarge;
      copy_from_ring(dst.data(), data_ + (head & mask_) + kRecordHeaderBytes, n);
      publish_head(head + len, atomic_load(header_->popped, std::memory_order_relaxed) + 1,
                   atomic_load(header_->popped_bytes, std::memory_order_relaxed) + len);
      return Status::kOk;
    }
    Reader r(*this);  // padding, empty or corrupted
    std::span<const std::byte> in;
    const Status s = r.try_peek(in);
    if (s != Status::kOk) return s;
    n = in.size();
    if (in.size() > dst.size()) return Status::kTooLarge;
    copy_from_ring(dst.data(), in.data(), in.size());
    r.release();
    return Status::kOk;
  }

  /// Records in flight as seen now; exact only when both sides are quiescent. A race can
  /// make it smaller than what was in flight, never larger (the producer's count is read
  /// first, so a consumer that moves meanwhile only lowers it; a producer's unpublished
  /// batch does not count yet). Any thread.
  [[nodiscard]] std::uint64_t size_approx() const noexcept {
    // Acquire: keeps the consumer's count read after the producer's.
    const std::uint64_t pushed = atomic_load(header_->pushed, std::memory_order_acquire);
    const std::uint64_t popped = atomic_load(header_->popped, std::memory_order_relaxed);
    return pushed >= popped ? pushed - popped : 0;
  }
  /// Bytes of the records in flight as seen now: their header words, payloads and the
  /// padding of each to 8 bytes, but not the padding records a wrap leaves (room that
  /// holds no record). Exact when both sides are quiescent; otherwise as size_approx.
  /// Any thread.
  [[nodiscard]] std::uint64_t bytes_approx() const noexcept {
    // Acquire: as in size_approx.
    const std::uint64_t pushed = atomic_load(header_->pushed_bytes, std::memory_order_acquire);
    const std::uint64_t popped = atomic_load(header_->popped_bytes, std::memory_order_relaxed);
    return pushed >= popped ? pushed - popped : 0;
  }
  [[nodiscard]] std::uint64_t pushed() const noexcept {
    return atomic_load(header_->pushed, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t popped() const noexcept {
    return atomic_load(header_->popped, std::memory_order_relaxed);
  }
  /// The most records, and record bytes (as bytes_approx), seen in flight; they never fall.
  /// Exact whenever the ring filled up: a push found no room, or a push (a batch) left no
  /// room for another record of its size, or reached the record limit. The producer then
  /// reads the consumer's counters (right after publishing such a push), and notes what is
  /// in flight unless that cannot exceed the marks. A consumer that takes records between
  /// the push and that read makes the note lower by as much; a mark never counts more
  /// than was in flight. Otherwise the marks are sampled where the producer looks anyway (at
  /// every window-sized boundary: 256 KiB of traffic, or a lap of a smaller buffer) and
  /// at each call of this function, which also counts what is in flight now; a short peak
  /// in between may not show. Any thread.
  struct HighWater {
    std::uint64_t records;
    std::uint64_t bytes;
  };
  [[nodiscard]] HighWater high_water() const noexcept;

  [[nodiscard]] std::uint64_t wraps_undone() const noexcept {
    return atomic_load(header_->wraps_undone, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t data_bytes() const noexcept { return data_bytes_; }
  [[nodiscard]] std::uint64_t max_records() const noexcept { return max_records_; }
  [[nodiscard]] std::uint64_t max_payload() const noexcept { return max_payload_; }

 private:
  // try_push's fill: a named type, so that it can be forced inline (GCC outlined the
  // lambda it replaced, and the 64 B copy with it, in the benchmark binary).
  struct CopyIn {
    std::span<const std::byte> payload;
    [[gnu::always_inline]] std::size_t operator()(std::span<std::byte> out) const noexcept {
      copy_to_ring(out.data(), payload.data(), payload.size());
      return payload.size();
    }
  };
  // Producer: refreshes the cached copies of the consumer's counters (one line) and notes
  // what is in flight for the high-water marks. `pushed`, `pushed_bytes`: the producer's
  // own, its open batch included.
  void look_at_consumer(std::uint64_t pushed, std::uint64_t pushed_bytes) noexcept;
  // check_filled's rare part: looks at the consumer unless the cached counters (which only
  // lag, so they bound what is in flight from above) show no mark could rise.
  void note_fill(std::uint64_t pushed, std::uint64_t pushed_bytes) noexcept;
  // Whether these indices admit undoing the wrap whose padding is at `pad`: the consumer
  // has not passed it, and the records written since (from `front`, set here, to `tail`)
  // fit between the padding and the buffer's end without overlapping where they are.
  [[nodiscard]] bool undo_fits(std::uint64_t pad, std::uint64_t head, std::uint64_t tail,
                               std::uint64_t& front) const noexcept;
  // Raises the high-water marks to at least these (any thread; atomic maximum).
  void note_high_water(std::uint64_t records, std::uint64_t bytes) const noexcept;
  static constexpr std::uint64_t record_bytes(std::uint64_t payload) noexcept {
    return kRecordHeaderBytes + ((payload + 7) & ~std::uint64_t{7});
  }
  RecordWord& word_at(std::uint64_t index) const noexcept {
    // The buffer is 8-byte aligned and every record starts on an 8-byte boundary.
    return *reinterpret_cast<RecordWord*>(data_ + (index & mask_));
  }

  /// The common case of a reservation: the record ends before the next window boundary
  /// (so it needs no padding and no early wrap), is not large, and the cached indices show
  /// room.
  [[nodiscard]] bool fits_fast(std::uint64_t tail, std::uint64_t pushed, std::size_t n,
                               std::uint64_t need) const noexcept {
    // Not starting at a window-sized boundary and not crossing one (it may end at one),
    // so never across the buffer's end either (the buffer is a whole number of windows).
    return n <= max_payload_ && ((tail - 1) & (hot_window_ - 1)) + need < hot_window_ && need < kLargeRecordBytes &&
           tail + need - cached_head_ <= data_bytes_ && pushed - cached_popped_ < max_records_;
  }
  /// After a publish up to `tail`, `pushed`, `pushed_bytes` (the producer's own counts):
  /// when the cached counters say the ring is now full (no room for another record of
  /// `need` bytes, or the record limit reached), notes the fill for the high-water marks.
  /// Only then, and only when the marks could rise, does it read the consumer's line: a
  /// fill that no later push runs into (filled to capacity, then drained) is seen only
  /// here, since a stale `popped` says full only at the next push, after the drain.
  [[gnu::always_inline]] void check_filled(std::uint64_t tail, std::uint64_t pushed, std::uint64_t pushed_bytes,
                                           std::uint64_t need) noexcept {
    if (tail + need - cached_head_ > data_bytes_ || pushed - cached_popped_ >= max_records_) [[unlikely]] {
      note_fill(pushed, pushed_bytes);
    }
  }
  /// Zeroes the word at `next` if an earlier lap left one there that reads as the record
  /// for that index (see seal_record). Only while `next` is free space: a full lap past
  /// `head` (a lower bound of the consumer's) it is the header of the record at head.
  [[gnu::always_inline]] void clear_stale_word(std::uint64_t next, std::uint64_t head) noexcept {
    if (next - head >= data_bytes_) return;
    RecordWord& slot = word_at(next);
    if (static_cast<std::uint32_t>(atomic_load(slot, std::memory_order_relaxed) >> 32) == record_stamp(next)) {
      atomic_store(slot, RecordWord{0}, std::memory_order_relaxed);
    }
  }
  /// Publishes the data record of `used` bytes at `at`, whose successor goes at `next`.
  /// Forced inline: GCC's heuristics left it out of line in the channel's send path once
  /// that path grew a little, a call per message (see docs/performance.md).
  [[gnu::always_inline]] void seal_record(std::uint64_t at, std::uint64_t next, std::uint32_t used) noexcept;
  /// True when `word`, read at `at`, is a padding record: it always runs to the buffer's end.
  [[nodiscard]] bool is_padding_record(std::uint64_t at, RecordWord word) const noexcept {
    const auto low = static_cast<std::uint32_t>(word);
    return static_cast<std::uint32_t>(word >> 32) == record_stamp(at) && (low & kPaddingFlag) != 0 &&
           (at & mask_) + kRecordHeaderBytes + (low & ~kPaddingFlag) == data_bytes_;
  }
  /// True when `word`, read at `head`, is a well-formed data record; `len` its length.
  [[nodiscard]] bool is_data_record(std::uint64_t head, RecordWord word, std::uint64_t& len) const noexcept {
    const auto low = static_cast<std::uint32_t>(word);
    len = record_bytes(low & ~kPaddingFlag);
    return static_cast<std::uint32_t>(word >> 32) == record_stamp(head) && (low & kPaddingFlag) == 0 &&
           low <= max_payload_ && (head & mask_) + len <= data_bytes_;
  }
  void publish_tail(std::uint64_t tail, std::uint64_t pushed, std::uint64_t pushed_bytes) noexcept {
    // Relaxed: counts for sizing and stats; records publish themselves.
    atomic_store(header_->pushed, pushed, std::memory_order_relaxed);
    atomic_store(header_->pushed_bytes, pushed_bytes, std::memory_order_relaxed);
    // SYNC POINT tail-publish (release): pairs with the acquire in Reader::verify_empty and
    // attach(); every record below `tail` has its word stored (corruption check).
    atomic_store(header_->tail, tail, std::memory_order_release);
  }
  void publish_head(std::uint64_t head, std::uint64_t popped, std::uint64_t popped_bytes) noexcept {
    // Relaxed: counts that guard no memory (the bytes are guarded by `head`). Stored before
    // `head`, so a producer that reads them after its acquire of `head` never finds them older.
    atomic_store(header_->popped, popped, std::memory_order_relaxed);
    atomic_store(header_->popped_bytes, popped_bytes, std::memory_order_relaxed);
    // SYNC POINT ring-reclaim (release): pairs with look_at_consumer's acquire of head (the
    // producer's refresh of its cached copy, from Writer::try_reserve's slow path and the
    // fill check) and can_reserve's; all reads of the released records happen before the
    // producer may overwrite them.
    atomic_store(header_->head, head, std::memory_order_release);
  }

  // Read-mostly view state, shared by both sides.
  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t data_bytes_ = 0;
  std::uint64_t mask_ = 0;
  std::uint64_t max_records_ = 0;
  std::uint64_t max_payload_ = 0;
  std::uint64_t hot_window_ = 0;

  // Producer-local: its cached copies of the consumer's counters (stale copies only ever
  // under-estimate free space, so they are safe).
  alignas(kCacheLine) std::uint64_t cached_head_ = 0;
  std::uint64_t cached_popped_ = 0;
  std::uint64_t cached_popped_bytes_ = 0;

};

// ---- hot path, inline ------------------------------------------------------------------

inline Status SpscByteRing::Writer::try_reserve(std::size_t n, std::span<std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  const std::uint64_t need = record_bytes(n);
  if (!r.fits_fast(tail_, pushed_, n, need)) return reserve_slow(n, out);
  out = open_reservation(0, n);
  return Status::kOk;
}

inline void SpscByteRing::Writer::commit(std::size_t used) noexcept {
  if (!open_) return;
  SpscByteRing& r = ring_;
  if (used > reserved_size_) used = reserved_size_;
  const std::uint64_t at = reserved_at_ + reserved_pad_;
  const std::uint64_t next = at + record_bytes(used);
  // The data word goes before the padding word, so a consumer that skips the padding
  // finds it.
  r.seal_record(at, next, static_cast<std::uint32_t>(used));
  if (reserved_pad_ != 0) {
    const auto skip = static_cast<std::uint32_t>(reserved_pad_ - kRecordHeaderBytes);
    atomic_store(r.word_at(reserved_at_), record_word(reserved_at_, skip | kPaddingFlag),
                 std::memory_order_release);
    // Relaxed: read only by producers (undo_wrap, stranded), ordered by the producer side.
    atomic_store(r.header_->padded_at, reserved_at_, std::memory_order_relaxed);
    padded_ += reserved_pad_;
  }
  tail_ = next;
  ++pushed_;
  open_ = false;
}

[[gnu::always_inline]] inline void SpscByteRing::seal_record(std::uint64_t at, std::uint64_t next,
                                                             std::uint32_t used) noexcept {
  // Record boundaries move from lap to lap, so the slot where the next header will go may
  // hold old payload bytes that happen to look like the valid word for that index. The
  // consumer reads that slot right after this record, so such a word is zeroed first. Only
  // then: a caught-up consumer polls this very slot, and an unconditional store would
  // move its line once more per message. The slot is free space (only we write it), so
  // the check cannot race. When it is not free the ring is exactly full and the slot holds
  // the header of the record at `cached_head_`, one lap back: its stamp cannot match.
  clear_stale_word(next, cached_head_);
  // SYNC POINT record-publish (release): pairs with Reader::try_peek's acquire of the
  // word; the payload and the zeroed next slot are visible once the stamp is.
  atomic_store(word_at(at), record_word(at, used), std::memory_order_release);
}

inline void SpscByteRing::Writer::publish() noexcept {
  if (tail_ == published_tail_) return;
  const std::uint64_t bytes = pushed_bytes();
  ring_.publish_tail(tail_, pushed_, bytes);
  published_tail_ = tail_;
  padded_ = 0;
  // Once per batch, at its end: a batch that filled the ring and went on did so because
  // its cached copies were stale, and refreshed them (looked) when they ran out.
  ring_.check_filled(tail_, pushed_, bytes, record_bytes(reserved_size_));
}

inline Status SpscByteRing::Reader::try_peek(std::span<const std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  // SYNC POINT record-publish (acquire): pairs with seal_record's release store.
  const RecordWord word = atomic_load(r.word_at(head_), std::memory_order_acquire);
  std::uint64_t len = 0;
  if (!r.is_data_record(head_, word, len)) [[unlikely]] return peek_past(word, out);
  out = std::span<const std::byte>(r.data_ + (head_ & r.mask_) + kRecordHeaderBytes, static_cast<std::uint32_t>(word));
  next_head_ = head_ + len;
  peeked_ = true;
  return Status::kOk;
}

inline Status SpscByteRing::Reader::verify_empty() noexcept {
  // SYNC POINT tail-publish (acquire): pairs with Writer::publish. If `tail` is past our
  // head, the record at head was stored before it, so a stamp mismatch is corruption.
  // Records publish themselves on commit, so the consumer may have taken records whose
  // `tail` the producer has not stored yet: tail <= head means nothing is owed.
  const std::uint64_t tail = atomic_load(ring_.header_->tail, std::memory_order_acquire);
  if (tail <= head_) return Status::kEmpty;
  std::span<const std::byte> ignored;
  const Status s = try_peek(ignored);
  peeked_ = false;
  return s == Status::kOk ? Status::kOk : Status::kCorrupted;  // kOk: it landed meanwhile
}

inline void SpscByteRing::Reader::release() noexcept {
  if (!peeked_) return;
  head_ = next_head_;
  ++popped_;
  peeked_ = false;
}

inline void SpscByteRing::Reader::publish() noexcept {
  if (head_ == published_head_) return;
  // The records' bytes, counted per batch as in Writer::pushed_bytes.
  ring_.publish_head(head_, popped_,
                     atomic_load(ring_.header_->popped_bytes, std::memory_order_relaxed) + (head_ - published_head_) -
                         skipped_);
  published_head_ = head_;
  skipped_ = 0;
}

}  // namespace xchan::core
