// Set-up and validation of SpscByteRing; the hot path is inline in the header.
#include "xchan/core/spsc_byte_ring.hpp"

#include <bit>

namespace xchan::core {

std::uint64_t SpscByteRing::data_bytes_for_payload(std::uint64_t max_payload) noexcept {
  constexpr std::uint64_t kLargest = std::uint64_t{1} << 60;
  if (max_payload >= kLargest) return 0;  // caller reports kTooLarge
  // A payload of p needs a buffer with p <= bytes/2 - header.
  const std::uint64_t bytes = std::bit_ceil(2 * (max_payload + kRecordHeaderBytes));
  return bytes < kMinDataBytes ? kMinDataBytes : bytes;
}

Status SpscByteRing::init(RingHeader& header, std::span<std::byte> data,
                          std::uint64_t max_records) noexcept {
  const std::uint64_t bytes = data.size();
  if (bytes < kMinDataBytes || !std::has_single_bit(bytes) || max_records == 0 ||
      reinterpret_cast<std::uintptr_t>(data.data()) % alignof(RecordWord) != 0 ||
      max_payload_for(bytes) >= kPaddingFlag) {
    return Status::kInvalidArgument;
  }
  header = RingHeader{};
  header.data_bytes = bytes;
  header.max_records = max_records;
  header.version = kRingVersion;
  // Release: a view that attaches from another thread sees the fields above once it
  // sees the magic.
  atomic_store(header.magic, kRingMagic, std::memory_order_release);
  return Status::kOk;
}

Status SpscByteRing::attach(RingHeader& header, std::span<std::byte> data) noexcept {
  if (atomic_load(header.magic, std::memory_order_acquire) != kRingMagic ||
      header.version != kRingVersion) {
    return Status::kCorrupted;
  }
  const std::uint64_t bytes = header.data_bytes;
  if (bytes != data.size() || !std::has_single_bit(bytes) || bytes < kMinDataBytes ||
      max_payload_for(bytes) >= kPaddingFlag ||
      header.max_records == 0) {
    return Status::kCorrupted;
  }
  const std::uint64_t head = atomic_load(header.head, std::memory_order_acquire);
  const std::uint64_t tail = atomic_load(header.tail, std::memory_order_acquire);
  if (tail - head > bytes || head % alignof(RecordWord) != 0) return Status::kCorrupted;

  header_ = &header;
  data_ = data.data();
  data_bytes_ = bytes;
  mask_ = bytes - 1;
  max_records_ = header.max_records;
  max_payload_ = max_payload_for(bytes);
  hot_window_ = bytes < kHotWindowBytes ? bytes : kHotWindowBytes;
  cached_head_ = head;
  cached_popped_ = atomic_load(header.popped, std::memory_order_relaxed);
  cached_popped_bytes_ = atomic_load(header.popped_bytes, std::memory_order_relaxed);
  return Status::kOk;
}

bool SpscByteRing::can_reserve(std::size_t n) const noexcept {
  if (n > max_payload_) return false;
  // Acquire: ring-reclaim, as in look_at_consumer.
  const std::uint64_t head = atomic_load(header_->head, std::memory_order_acquire);
  const std::uint64_t tail = atomic_load(header_->tail, std::memory_order_relaxed);
  const std::uint64_t popped = atomic_load(header_->popped, std::memory_order_relaxed);
  const std::uint64_t pushed = atomic_load(header_->pushed, std::memory_order_relaxed);
  const std::uint64_t need = record_bytes(n);
  const std::uint64_t contiguous = data_bytes_ - (tail & mask_);
  const std::uint64_t total = need > contiguous ? contiguous + need : need;
  // `tail`/`pushed` lag records committed in a producer's open batch, which the consumer
  // may already have taken: clamp at zero rather than wrap.
  const std::uint64_t bytes_in_flight = tail > head ? tail - head : 0;
  const std::uint64_t records_in_flight = pushed > popped ? pushed - popped : 0;
  return bytes_in_flight + total <= data_bytes_ && records_in_flight < max_records_;
}

bool SpscByteRing::undo_fits(std::uint64_t pad, std::uint64_t head, std::uint64_t tail,
                             std::uint64_t& front) const noexcept {
  if (pad == 0 || head > pad) return false;  // none, or the consumer is past it
  front = pad + (data_bytes_ - (pad & mask_));  // where the wrap went
  // Everything from `front` to `tail` was written after the wrap, within the room before
  // the consumer: at most (head & mask_) <= (pad & mask_) bytes, so the move never
  // overlaps its source (checked all the same: the indices may be stale, or overwritten).
  // It must also end before the buffer does (a wrap at the very end never qualifies: its
  // record did not fit there).
  if (tail < front) return false;
  const std::uint64_t moved = tail - front;
  return moved <= (pad & mask_) && (pad & mask_) + moved <= data_bytes_;
}

bool SpscByteRing::stranded(std::size_t n) const noexcept {
  const std::uint64_t pad = atomic_load(header_->padded_at, std::memory_order_relaxed);
  const std::uint64_t head = atomic_load(header_->head, std::memory_order_relaxed);
  const std::uint64_t tail = atomic_load(header_->tail, std::memory_order_relaxed);
  std::uint64_t front = 0;
  return n <= max_payload_ && undo_fits(pad, head, tail, front) &&
         pad + (tail - front) + record_bytes(n) <= head + data_bytes_;
}

bool SpscByteRing::undo_wrap() noexcept {
  const std::uint64_t pad = atomic_load(header_->padded_at, std::memory_order_relaxed);
  // Acquire: ring-reclaim; also, the caller keeps the consumer out, so head is still.
  const std::uint64_t head = atomic_load(header_->head, std::memory_order_acquire);
  const std::uint64_t tail = atomic_load(header_->tail, std::memory_order_relaxed);
  std::uint64_t front = 0;
  if (!undo_fits(pad, head, tail, front)) return false;
  // (An early wrap needs head > 0, so hold_wraps_at = head below is never the "none" 0.)
  // `padded_at` must name a padding record that runs to the end of the buffer; if the
  // header was overwritten, moving records would scramble the ones in flight.
  if (!is_padding_record(pad, atomic_load(word_at(pad), std::memory_order_relaxed))) return false;
  // All or nothing: these are our own records, and anything else means the memory was
  // overwritten. Then leave everything as it is (the consumer will report it) rather than
  // move half of them.
  for (std::uint64_t at = front; at < tail;) {
    std::uint64_t len = 0;
    if (!is_data_record(at, atomic_load(word_at(at), std::memory_order_relaxed), len) || at + len > tail) {
      return false;
    }
    at += len;
  }
  std::uint64_t from = front;
  std::uint64_t to = pad;
  while (from < tail) {
    const auto size = static_cast<std::uint32_t>(atomic_load(word_at(from), std::memory_order_relaxed));
    const std::uint64_t len = record_bytes(size);
    std::memcpy(data_ + (to & mask_) + kRecordHeaderBytes, data_ + (from & mask_) + kRecordHeaderBytes, size);
    atomic_store(word_at(to), record_word(to, size), std::memory_order_relaxed);
    // The old word would read as a record when the producer next reaches `from`.
    atomic_store(word_at(from), RecordWord{0}, std::memory_order_relaxed);
    from += len;
    to += len;
  }
  // The slot after the last moved record may hold an old word valid for that index (as
  // in seal_record); with nothing moved it is the padding itself.
  clear_stale_word(to, head);
  atomic_store(header_->padded_at, std::uint64_t{0}, std::memory_order_relaxed);
  atomic_store(header_->hold_wraps_at, head, std::memory_order_relaxed);
  atomic_store(header_->wraps_undone, atomic_load(header_->wraps_undone, std::memory_order_relaxed) + 1,
               std::memory_order_relaxed);
  // SYNC POINT tail-publish (release), as in publish_tail; the consumer side's hand-back
  // (the caller's) orders all of the above before the consumer's next look.
  atomic_store(header_->tail, to, std::memory_order_release);
  return true;  // `to` < `tail`: at least the padding's room came back
}

void SpscByteRing::repair() noexcept {
  const std::uint64_t head = atomic_load(header_->head, std::memory_order_acquire);
  std::uint64_t at = head;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  while (at - head < data_bytes_) {
    const RecordWord word = atomic_load(word_at(at), std::memory_order_acquire);
    std::uint64_t len = 0;
    if (is_data_record(at, word, len)) {
      at += len;
      ++records;
      bytes += len;
    } else if (is_padding_record(at, word)) {
      at += kRecordHeaderBytes + (static_cast<std::uint32_t>(word) & ~kPaddingFlag);
    } else {
      break;
    }
  }
  if (at - head > data_bytes_) at = head;  // not a run of records: publish nothing more
  const std::uint64_t popped = atomic_load(header_->popped, std::memory_order_relaxed);
  const std::uint64_t popped_bytes = atomic_load(header_->popped_bytes, std::memory_order_relaxed);
  publish_tail(at, popped + records, popped_bytes + bytes);
}

void SpscByteRing::look_at_consumer(std::uint64_t pushed, std::uint64_t pushed_bytes) noexcept {
  // SYNC POINT ring-reclaim (acquire): pairs with publish_head's release of head, so the
  // consumer has finished reading the bytes we are about to overwrite.
  cached_head_ = atomic_load(header_->head, std::memory_order_acquire);
  // Relaxed: the counts guard no memory (the bytes are guarded by head); they share head's
  // line, so this costs no second miss, and are stored before it (publish_head), so they
  // are at least as new as the head just read.
  cached_popped_ = atomic_load(header_->popped, std::memory_order_relaxed);
  cached_popped_bytes_ = atomic_load(header_->popped_bytes, std::memory_order_relaxed);
  // The consumer may have taken records of our open batch, never more.
  note_high_water(pushed - cached_popped_, pushed_bytes - cached_popped_bytes_);
}

void SpscByteRing::note_fill(std::uint64_t pushed, std::uint64_t pushed_bytes) noexcept {
  // A ring kept full by a slow consumer calls this for most pushes: it costs a miss on the
  // consumer's line only while the marks can still rise. Looking after the publish, not
  // before the push, so that a record the consumer takes meanwhile is not counted.
  if (pushed - cached_popped_ > atomic_load(header_->high_water_records, std::memory_order_relaxed) ||
      pushed_bytes - cached_popped_bytes_ > atomic_load(header_->high_water_bytes, std::memory_order_relaxed)) {
    look_at_consumer(pushed, pushed_bytes);
  }
}

void SpscByteRing::note_high_water(std::uint64_t records, std::uint64_t bytes) const noexcept {
  // Relaxed maxima: statistics, guarding nothing. The producer writes them on its slow
  // path only (and only when they rise); stats() callers rarely.
  auto raise = [](std::uint64_t& field, std::uint64_t value) {
    std::uint64_t seen = atomic_load(field, std::memory_order_relaxed);
    while (seen < value && !atomic_compare_exchange(field, seen, value, std::memory_order_relaxed)) {
    }
  };
  raise(header_->high_water_records, records);
  raise(header_->high_water_bytes, bytes);
}

SpscByteRing::HighWater SpscByteRing::high_water() const noexcept {
  // What is in flight now counts too (so a channel that never filled still shows its
  // depth when asked). Both reads can only under-count in a race, so a mark never exceeds
  // what was in flight.
  note_high_water(size_approx(), bytes_approx());
  return {atomic_load(header_->high_water_records, std::memory_order_relaxed),
          atomic_load(header_->high_water_bytes, std::memory_order_relaxed)};
}

Status SpscByteRing::Reader::peek_past(RecordWord word, std::span<const std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  if (static_cast<std::uint32_t>(word >> 32) != record_stamp(head_)) return Status::kEmpty;
  // A stamped word that is no data record must be a padding record, which runs to the
  // buffer's end and is always followed by a data record (committed before the padding's
  // word, so it is there).
  if (!r.is_padding_record(head_, word)) return Status::kCorrupted;
  const std::uint64_t head = head_ + kRecordHeaderBytes + (static_cast<std::uint32_t>(word) & ~kPaddingFlag);
  // SYNC POINT record-publish (acquire), as in try_peek.
  const RecordWord next = atomic_load(r.word_at(head), std::memory_order_acquire);
  std::uint64_t len = 0;
  if (!r.is_data_record(head, next, len)) return Status::kCorrupted;
  // The padding holds no record: pass it now, whether or not the record gets released;
  // publish() counts the bytes head moved less these.
  skipped_ += head - head_;
  head_ = head;
  out = std::span<const std::byte>(r.data_ + (head & r.mask_) + kRecordHeaderBytes, static_cast<std::uint32_t>(next));
  next_head_ = head + len;
  peeked_ = true;
  return Status::kOk;
}

Status SpscByteRing::Writer::reserve_slow(std::size_t n, std::span<std::byte>& out) noexcept {
  SpscByteRing& r = ring_;
  if (n > r.max_payload_) return Status::kTooLarge;
  const std::uint64_t need = record_bytes(n);
  const std::uint64_t offset = tail_ & r.mask_;
  const std::uint64_t contiguous = r.data_bytes_ - offset;
  std::uint64_t pad = need > contiguous ? contiguous : 0;
  // Reaching a window-sized boundary (the record would cross one, or start right at one).
  const std::uint64_t in_window = offset & (r.hot_window_ - 1);
  const bool at_boundary = in_window == 0 || in_window + need > r.hot_window_;
  // Not at the front, and not while undo_wrap() holds early wraps: until the consumer
  // moves, a burst is filling the room that the undo gave back.
  bool may_wrap_early = offset != 0;
  const std::uint64_t hold = atomic_load(r.header_->hold_wraps_at, std::memory_order_relaxed);
  // The consumer's indices are read at most once per reservation: a second read right
  // after the first would only cost another miss on its line.
  bool looked = false;
  auto look = [&] {
    if (!looked) r.look_at_consumer(pushed_, pushed_bytes());
    looked = true;
  };
  // At a boundary the producer looks at the consumer anyway (fresh indices for the early
  // wrap, and a high-water sample at least every window of traffic).
  if (at_boundary || (hold != 0 && r.cached_head_ <= hold)) look();
  if (hold != 0 && r.cached_head_ == hold) may_wrap_early = false;  // (head >= hold)
  if (pad == 0 && may_wrap_early && (at_boundary || need >= kLargeRecordBytes)) {
    // At a window boundary, or any large record: wrap early if the consumer has taken
    // enough that the padding costs no room we need (at most one head refresh), so that a
    // stream cycles through a window or two instead of walking the whole buffer.
    if (tail_ + contiguous + need - r.cached_head_ > r.data_bytes_) look();
    if (tail_ + contiguous + need - r.cached_head_ <= r.data_bytes_) pad = contiguous;
  }
  const std::uint64_t total = pad + need;
  if (tail_ + total - r.cached_head_ > r.data_bytes_) {
    look();
    if (tail_ + total - r.cached_head_ > r.data_bytes_) return Status::kFull;
  }
  if (pushed_ - r.cached_popped_ >= r.max_records_) {
    look();
    if (pushed_ - r.cached_popped_ >= r.max_records_) return Status::kFull;
  }
  out = open_reservation(pad, n);
  return Status::kOk;
}

}  // namespace xchan::core
