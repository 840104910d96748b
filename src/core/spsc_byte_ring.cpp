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
  return Status::kOk;
}

bool SpscByteRing::can_reserve(std::size_t n) const noexcept {
  if (n > max_payload_) return false;
  // Acquire: ring-reclaim, as in Writer::try_reserve.
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
  // Only from the buffer's upper half: after an early wrap at `offset`, a burst that the
  // consumer does not read meanwhile can fill the front only up to where that consumer
  // stopped, at most `offset` bytes. Wrapping in the lower half let a burst sent after a
  // drain stall at the next boundary (256 KiB of a 64 MiB channel), which a thread that
  // sends everything before receiving never gets past.
  const bool may_wrap_early = offset >= r.data_bytes_ / 2;
  if (pad == 0 && may_wrap_early && (at_boundary || need >= kLargeRecordBytes)) {
    // At a window boundary, or any large record: wrap early if the consumer has taken
    // enough that the padding costs no room we need (at most one head refresh), so that a
    // stream cycles through half the buffer instead of walking all of it. The bytes in
    // flight can then still reach `offset` >= half the buffer before the producer meets
    // the consumer: the front up to where it stopped, plus what lies before the padding.
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

}  // namespace xchan::core
