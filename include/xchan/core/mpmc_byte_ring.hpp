// The work-queue case: several producers and several consumers on one byte ring.
//
// Design: the SPSC ring plus one SpinLock per side. Producers serialize among themselves
// and consumers among themselves, but a producer never waits for a consumer: the two sides
// still meet only at the ring's release/acquire indices. Critical sections are one bounded
// memcpy, so on this hardware the lock costs one uncontended exchange on a line the side
// already owns; bench/cpp measures it against boost::lockfree::queue.
// Progress: blocking among same-side peers (a preempted lock holder stalls its own side),
// wait-free between the two sides.
#pragma once

#include <mutex>

#include "xchan/core/spin_lock.hpp"
#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan::core {

/// Shared state of an MPMC ring: the ring plus the two side locks, each on its own line.
struct MpmcRingHeader {
  RingHeader ring;
  alignas(kCacheLine) SpinLockWord producer_lock;
  alignas(kCacheLine) SpinLockWord consumer_lock;
};
static_assert(std::is_standard_layout_v<MpmcRingHeader>);
static_assert(std::is_trivially_copyable_v<MpmcRingHeader>);

class MpmcByteRing {
 public:
  /// Lays out a fresh ring; see SpscByteRing::init. Not thread-safe.
  [[nodiscard]] static Status init(MpmcRingHeader& header, std::span<std::byte> data,
                                   std::uint64_t max_records) noexcept {
    header.producer_lock.state = 0;
    header.consumer_lock.state = 0;
    return SpscByteRing::init(header.ring, data, max_records);
  }

  /// Attaches a view; see SpscByteRing::attach.
  [[nodiscard]] Status attach(MpmcRingHeader& header, std::span<std::byte> data) noexcept {
    header_ = &header;
    return ring_.attach(header.ring, data);
  }

  /// A producer's exclusive batch: holds the producer lock for its lifetime, so keep it
  /// short. Any thread; blocks only on other producers.
  class Writer {
   public:
    explicit Writer(MpmcByteRing& r) noexcept
        : lock_(r.header_->producer_lock), guard_(lock_), writer_(r.ring_) {}
    [[nodiscard]] Status try_reserve(std::size_t n, std::span<std::byte>& out) noexcept {
      return writer_.try_reserve(n, out);
    }
    void commit(std::size_t used) noexcept { writer_.commit(used); }
    void publish() noexcept { writer_.publish(); }

   private:
    SpinLock lock_;
    std::lock_guard<SpinLock> guard_;
    SpscByteRing::Writer writer_;  // destroyed (published) before guard_ unlocks
  };

  /// A consumer's exclusive batch: holds the consumer lock for its lifetime. Any thread;
  /// blocks only on other consumers.
  class Reader {
   public:
    explicit Reader(MpmcByteRing& r) noexcept
        : lock_(r.header_->consumer_lock), guard_(lock_), reader_(r.ring_) {}
    [[nodiscard]] Status try_peek(std::span<const std::byte>& out) noexcept {
      return reader_.try_peek(out);
    }
    [[nodiscard]] Status verify_empty() noexcept { return reader_.verify_empty(); }
    void release() noexcept { reader_.release(); }
    void publish() noexcept { reader_.publish(); }

   private:
    SpinLock lock_;
    std::lock_guard<SpinLock> guard_;
    SpscByteRing::Reader reader_;
  };

  /// Copies one message in. Any thread; see Writer.
  [[nodiscard]] Status try_push(std::span<const std::byte> payload) noexcept {
    SpinLock lock(header_->producer_lock);
    std::lock_guard<SpinLock> guard(lock);
    return ring_.try_push(payload);
  }

  /// Copies the oldest message out; see SpscByteRing::try_pop. Any thread.
  [[nodiscard]] Status try_pop(std::span<std::byte> dst, std::size_t& n) noexcept {
    SpinLock lock(header_->consumer_lock);
    std::lock_guard<SpinLock> guard(lock);
    return ring_.try_pop(dst, n);
  }

  /// The underlying ring, for sizes and counters (any thread).
  [[nodiscard]] const SpscByteRing& ring() const noexcept { return ring_; }

 private:
  MpmcRingHeader* header_ = nullptr;
  SpscByteRing ring_;
};

}  // namespace xchan::core
