// The work-queue case: several producers and several consumers on one byte ring.
//
// Design: the SPSC ring plus one SpinLock per side. Producers serialize among themselves
// and consumers among themselves, but a producer never waits for a consumer: the two sides
// still meet only at the ring's release/acquire indices. Critical sections are one bounded
// memcpy. Progress: blocking among same-side peers (a preempted lock holder stalls its own
// side), wait-free between the two sides.
//
// A side with a single user can skip its lock. The lock's exchange is a full barrier: it
// waits for the previous message's stores to leave the store buffer, which costs a
// cross-core miss per message (four fifths of a channel sender's time at 64 B). So each
// side has an `exclusive` flag, set by the layer above while that side has one end (see
// Channel): its user then only marks itself `busy` around the critical section, with
// plain stores and a compiler barrier. Whoever clears `exclusive` (a second end opening)
// does so under the lock, runs a process-wide heavy barrier (membarrier), and waits for
// `busy` to drop: an asymmetric Dekker handshake, so either the fast user sees the flag
// cleared and takes the lock, or the clearer sees it busy and waits. The core layer only
// reads the flag; it is 0 (always lock) unless set.
#pragma once

#include <cassert>

#include "xchan/core/spin_lock.hpp"
#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan::core {

/// One side's mutual exclusion, on its own line (written only by that side's users).
struct RingSide {
  SpinLockWord lock;
  std::uint32_t exclusive;  // 1: the side's single user may skip the lock (set from above)
  std::uint32_t busy;       // 1 while that user is in a critical section without the lock
};
static_assert(std::is_standard_layout_v<RingSide>);
static_assert(std::is_trivially_copyable_v<RingSide>);

/// Shared state of an MPMC ring: the ring plus the two sides, each on its own line.
struct MpmcRingHeader {
  RingHeader ring;
  alignas(kCacheLine) RingSide producer;
  alignas(kCacheLine) RingSide consumer;
};
static_assert(std::is_standard_layout_v<MpmcRingHeader>);
static_assert(std::is_trivially_copyable_v<MpmcRingHeader>);

/// Who takes a ring's locks: the id written into a held lock word, and what a waiter does
/// about a holder that may have died (see SpinLock). The default suits one process.
struct LockIdentity {
  std::uint32_t owner = 1;
  const LockRecovery* recovery = nullptr;
};

/// Holds one side for a critical section: without the lock when the side is exclusive
/// (its only user), else with it.
class SideGuard {
 public:
  explicit SideGuard(RingSide& side, const LockIdentity& who = {}) noexcept : side_(side) {
    if (atomic_load(side.exclusive, std::memory_order_relaxed) != 0U) {
#ifndef NDEBUG
      // The lock-free path's precondition: its one end is used by one thread at a time
      // (see Channel). A second user would find `busy` already set.
      const std::uint32_t was_busy = atomic_exchange(side.busy, 1U, std::memory_order_relaxed);
      assert(was_busy == 0U && "two threads in a channel side that runs without its lock");
#else
      atomic_store(side.busy, 1U, std::memory_order_relaxed);
#endif
      // SYNC POINT side-handshake: the light half; the clearer's heavy barrier orders this
      // store before the load below for every thread of the process.
      __atomic_signal_fence(__ATOMIC_SEQ_CST);
      // Acquire: pairs with the release that set `exclusive` under the lock, after the
      // last locked holder's writes.
      if (atomic_load(side.exclusive, std::memory_order_acquire) != 0U) {
        fast_ = true;
        return;
      }
      atomic_store(side.busy, 0U, std::memory_order_release);  // being made shared: lock
    }
    SpinLock(side.lock, who.owner, who.recovery).lock();
  }
  ~SideGuard() {
    // Release: the critical section's writes happen before the clearer's acquire of
    // `busy` (or the next holder's acquire of the lock).
    if (fast_) atomic_store(side_.busy, 0U, std::memory_order_release);
    else SpinLock(side_.lock).unlock();
  }
  SideGuard(const SideGuard&) = delete;
  SideGuard& operator=(const SideGuard&) = delete;

 private:
  RingSide& side_;
  bool fast_ = false;
};

class MpmcByteRing {
 public:
  /// Lays out a fresh ring; see SpscByteRing::init. Not thread-safe.
  [[nodiscard]] static Status init(MpmcRingHeader& header, std::span<std::byte> data,
                                   std::uint64_t max_records) noexcept {
    header.producer = RingSide{};
    header.consumer = RingSide{};
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
    explicit Writer(MpmcByteRing& r) noexcept : guard_(r.header_->producer, r.who_), writer_(r.ring_) {}
    [[nodiscard]] Status try_reserve(std::size_t n, std::span<std::byte>& out) noexcept {
      return writer_.try_reserve(n, out);
    }
    void commit(std::size_t used) noexcept { writer_.commit(used); }
    void publish() noexcept { writer_.publish(); }

   private:
    SideGuard guard_;
    SpscByteRing::Writer writer_;  // destroyed (published) before guard_ lets go
  };

  /// A consumer's exclusive batch: holds the consumer lock for its lifetime. Any thread;
  /// blocks only on other consumers.
  class Reader {
   public:
    explicit Reader(MpmcByteRing& r) noexcept : guard_(r.header_->consumer, r.who_), reader_(r.ring_) {}
    [[nodiscard]] Status try_peek(std::span<const std::byte>& out) noexcept {
      return reader_.try_peek(out);
    }
    [[nodiscard]] Status verify_empty() noexcept { return reader_.verify_empty(); }
    void release() noexcept { reader_.release(); }
    void publish() noexcept { reader_.publish(); }

   private:
    SideGuard guard_;
    SpscByteRing::Reader reader_;
  };

  /// Copies one message in. Any thread; see Writer.
  [[nodiscard]] Status try_push(std::span<const std::byte> payload) noexcept {
    SideGuard guard(header_->producer, who_);
    return ring_.try_push(payload);
  }

  /// A one-message Writer batch; see SpscByteRing::try_push_with. Any thread.
  template <class Fill>
  [[nodiscard]] Status try_push_with(std::size_t n, Fill&& fill) noexcept(noexcept(fill(std::span<std::byte>{}))) {
    SideGuard guard(header_->producer, who_);
    return ring_.try_push_with(n, std::forward<Fill>(fill));
  }

  /// Copies the oldest message out; see SpscByteRing::try_pop. Any thread.
  [[nodiscard]] Status try_pop(std::span<std::byte> dst, std::size_t& n) noexcept {
    SideGuard guard(header_->consumer, who_);
    return ring_.try_pop(dst, n);
  }

  /// SpscByteRing::undo_wrap under the producer side: the caller holds it and keeps the
  /// consumers out (holds their side against all its users).
  bool undo_wrap_held() noexcept { return ring_.undo_wrap(); }

  /// SpscByteRing::repair, the caller holding both sides.
  void repair_held() noexcept { ring_.repair(); }

  /// The underlying ring, for sizes and counters (any thread).
  [[nodiscard]] const SpscByteRing& ring() const noexcept { return ring_; }

  /// How this view takes the side locks from now on. Set before any use.
  void set_lock_identity(const LockIdentity& who) noexcept { who_ = who; }
  [[nodiscard]] const LockIdentity& lock_identity() const noexcept { return who_; }

 private:
  MpmcRingHeader* header_ = nullptr;
  SpscByteRing ring_;
  LockIdentity who_;
};

}  // namespace xchan::core
