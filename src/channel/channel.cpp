// Channel set-up, waiting, end counting and statistics.
#include "xchan/channel/channel.hpp"

#include <pthread.h>

#include <bit>
#include <mutex>
#include <new>
#include <thread>

#include "xchan/channel/registry.hpp"

namespace xchan {
namespace {

constexpr std::uint64_t kMinBufferBytes = 4096;
constexpr std::uint64_t kMaxBufferBytes = std::uint64_t{1} << 40;
constexpr std::uint64_t kHeaderBytes = 4096;  // header page; the buffer starts page-aligned
constexpr std::uint32_t kSpinsPerYield = 64;   // PAUSEs between sched_yield()s
static_assert(sizeof(ChannelHeader) <= kHeaderBytes);

std::uint64_t buffer_bytes_for(std::uint64_t max_bytes) noexcept {
  return std::bit_ceil(max_bytes < kMinBufferBytes ? kMinBufferBytes : max_bytes);
}

// Spin, then park on `word` until ready() holds or `*cancel` is set. Both are re-checked
// after prepare_wait() (see EventCount), so a notify between the check and the park is
// not lost: whoever sets `*cancel` stores it, then notifies (wake_receivers/_senders).
// `reaper` (a shared channel) is woken every Channel::kLivenessSlice to look for dead
// peers, whose reclaiming may be what makes the condition true.
template <class Ready>
Status wait_until(EventCount ec, Ready condition, Deadline deadline, std::uint32_t spin,
                  const std::uint32_t* cancel, Channel* reaper) noexcept {
  // Relaxed: the flag guards no memory; the eventcount's protocol orders the store
  // before the notify against the waiter's registration and re-check.
  const auto ready = [&] {
    return condition() || (cancel != nullptr && core::atomic_load(*cancel, std::memory_order_relaxed) != 0U);
  };
  if (ready()) return Status::kOk;
  if (deadline.expired()) return Status::kTimeout;
  for (std::uint32_t i = 0; i < spin; ++i) {
    // Mostly PAUSE, but give the CPU away now and then: the peer we are waiting for may
    // have just been woken onto this very CPU (the scheduler likes to put a wakee next
    // to its waker), and would otherwise wait for our spinning to end (docs/performance.md,
    // "Yielding while spinning").
    if (i % kSpinsPerYield == kSpinsPerYield - 1) std::this_thread::yield();
    else core::cpu_relax();
    if (ready()) return Status::kOk;
  }
  for (;;) {
    const EventCount::Key key = ec.prepare_wait();
    if (ready()) {
      ec.cancel_wait();
      return Status::kOk;
    }
    const Deadline until = reaper != nullptr ? deadline.min(Deadline::after(Channel::kLivenessSlice)) : deadline;
    const Status s = ec.wait(key, until);
    if (ready()) return Status::kOk;
    if (s == Status::kInterrupted) return s;
    // Callers may wait in short slices of their own (the Python bindings do, for signals):
    // every timeout counts towards the next look for dead peers, not only this wait's.
    if (s == Status::kTimeout && reaper != nullptr) {
      reaper->reap_now_and_then();
      if (ready()) return Status::kOk;
    }
    if (deadline.expired()) return Status::kTimeout;
  }
}

}  // namespace

std::uint64_t max_message_for(std::uint64_t max_bytes) noexcept {
  return core::SpscByteRing::max_payload_for(buffer_bytes_for(max_bytes));
}

std::shared_ptr<Channel> Channel::create(const ChannelConfig& config, Status& status) {
  if (config.capacity == 0 || config.capacity > (std::uint64_t{1} << 40) ||
      config.max_bytes > kMaxBufferBytes) {
    status = Status::kInvalidArgument;
    return nullptr;
  }
  const std::uint64_t data_bytes = buffer_bytes_for(config.max_bytes);
  const std::size_t prefault = kHeaderBytes + core::SpscByteRing::kHotWindowBytes;
  core::MemoryBlock memory;
  status = config.shared ? core::MemoryBlock::map_new_shared(kHeaderBytes + data_bytes, prefault, memory)
                         : core::MemoryBlock::map_anonymous(kHeaderBytes + data_bytes, prefault, memory);
  if (status != Status::kOk) return nullptr;

  auto* header = ::new (memory.bytes().data()) ChannelHeader{};
  header->version = kChannelVersion;
  header->spin_iterations = config.spin_iterations;
  header->data_offset = kHeaderBytes;
  header->data_bytes = data_bytes;
  // Memory private to this process lets waiters pay for the notifiers' fences; a shared
  // segment needs fences every process's threads take part in.
  header->fencing = static_cast<std::uint32_t>(config.shared ? Fencing::kSymmetric : best_process_local_fencing());
  const std::span<std::byte> data = memory.bytes().subspan(kHeaderBytes, data_bytes);
  status = core::MpmcByteRing::init(header->ring, data, config.capacity);
  if (status != Status::kOk) return nullptr;
  // A side with one end skips its lock (see MpmcByteRing). Clearing the flag needs the
  // heavy barrier, so only with process-local fencing; across processes both sides lock.
  const std::uint32_t exclusive = is_process_local(static_cast<Fencing>(header->fencing)) ? 1U : 0U;
  header->ring.producer.exclusive = exclusive;
  header->ring.consumer.exclusive = exclusive;
  // Release: an attacher in another thread (or a process handed the segment, through a
  // system call that orders as much) sees a complete header once it sees the magic.
  core::atomic_store(header->magic, kChannelMagic, std::memory_order_release);
  return open(std::move(memory), status);
}

std::shared_ptr<Channel> Channel::attach(int fd, Status& status) {
  core::MemoryBlock memory;
  status = core::MemoryBlock::map_existing_shared(fd, memory);
  if (status != Status::kOk) return nullptr;
  return open(std::move(memory), status);
}

std::shared_ptr<Channel> Channel::open(core::MemoryBlock memory, Status& status) {
  // Every field is read once into a local and checked before use: the segment may have
  // been written by a faulty or hostile process.
  const std::span<std::byte> all = memory.bytes();
  if (all.size() < kHeaderBytes) {
    status = Status::kCorrupted;
    return nullptr;
  }
  auto* header = reinterpret_cast<ChannelHeader*>(all.data());
  const std::uint64_t magic = core::atomic_load(header->magic, std::memory_order_acquire);
  const std::uint32_t version = header->version;
  const std::uint64_t data_offset = header->data_offset;
  const std::uint64_t data_bytes = header->data_bytes;
  const std::uint32_t fencing = header->fencing;
  const bool shared = memory.fd() >= 0;
  const bool fencing_ok = shared ? fencing == static_cast<std::uint32_t>(Fencing::kSymmetric)
                                 : fencing <= static_cast<std::uint32_t>(Fencing::kAdaptive);
  if (magic != kChannelMagic || version != kChannelVersion || data_offset != kHeaderBytes || !fencing_ok ||
      data_bytes > all.size() - kHeaderBytes) {
    status = Status::kCorrupted;
    return nullptr;
  }
  std::shared_ptr<Channel> channel(new Channel());
  channel->fork_generation_ = count_forks();
  channel->memory_ = std::move(memory);
  channel->header_ = header;
  channel->fencing_ = static_cast<Fencing>(fencing);
  status = channel->ring_.attach(header->ring, channel->memory_.bytes().subspan(kHeaderBytes, data_bytes));
  if (status != Status::kOk) return nullptr;
  if (shared) {
    // Set before the claim: claiming a full table reclaims dead peers, which takes locks.
    channel->recovery_ = core::LockRecovery{&Channel::holder_gone, channel.get()};
    channel->shallow_recovery_ = core::LockRecovery{&Channel::free_dead_holders_lock, channel.get()};
    if (!channel->claim_slot()) {  // sets shared_ once the slot is its own
      status = Status::kNoMemory;  // kMaxPeers processes hold it already
      return nullptr;
    }
    channel->ring_.set_lock_identity(core::LockIdentity{channel->slot_ + 1, &channel->recovery_});
    channel->remember_shared();
  }
  channel->id_ = ChannelRegistry::instance().add(channel);
  return channel;
}

Channel::~Channel() {
  if (shared_) forget_shared();
  if (id_ != 0) ChannelRegistry::instance().remove(id_);
  if (shared_ && usable_in_this_process()) release_slot();
}

Status Channel::wait_writable(std::size_t n, Deadline deadline, std::uint32_t spin,
                              const std::uint32_t* cancel) noexcept {
  if (n > max_message()) return Status::kTooLarge;
  const auto ready = [&] { return writable(n); };
  Channel* const reaper = shared_ ? this : nullptr;
  if (!ring_.ring().stranded(n)) return wait_until(not_full(), ready, deadline, spin, cancel, reaper);
  // The room may be held back by a wrap: give the receivers kStrandedWait to pass it (a
  // busy receiver usually does; then nothing is moved), else take it back.
  const Status s = wait_until(not_full(), ready, deadline.min(Deadline::after(kStrandedWait)), spin, cancel, reaper);
  if (s != Status::kTimeout) return s;
  if (reclaim_stranded(n)) return Status::kOk;
  return deadline.expired() ? Status::kTimeout : wait_until(not_full(), ready, deadline, spin, cancel, reaper);
}

bool Channel::reclaim_stranded(std::size_t n) noexcept {
  // Not in a shared channel: a process that died halfway through moving records would
  // leave them beyond repair (see SpscByteRing::repair). Its room comes back as the
  // receivers pass the wrap.
  if (shared_ || !ring_.ring().stranded(n)) return false;
  {
    // Producer side first, then consumer side: nothing takes them in the other order.
    const core::SideGuard producer(header_->ring.producer, ring_.lock_identity());
    const bool exclusive = take_side(header_->ring.consumer);
    ring_.undo_wrap_held();
    give_side(header_->ring.consumer, exclusive);
  }
  // Other senders may be parked on the room that came back.
  not_full().notify_all();
  return ring_.ring().can_reserve(n);
}

Status Channel::wait_readable(Deadline deadline, std::uint32_t spin, const std::uint32_t* cancel) noexcept {
  return wait_until(not_empty(), [&] { return readable(); }, deadline, spin, cancel, shared_ ? this : nullptr);
}

std::uint64_t Channel::count_forks() noexcept {
  // Once per process. If pthread_atfork fails (no memory), forks go uncounted and a child
  // could use a copied channel: nothing better is possible without the handler.
  // The same handlers hand shared channels' ends over to the child (peers.cpp), after
  // the generation is counted.
  static const bool installed = pthread_atfork(&Channel::before_fork, &Channel::after_fork_in_parent, [] {
    g_fork_generation_.fetch_add(1, std::memory_order_relaxed);
    Channel::after_fork_in_child();
  }) == 0;
  (void)installed;
  return current_fork_generation();
}

bool Channel::add_sender() noexcept {
  if (shared_) return add_shared_end(true);
  // Relaxed: a new end is made from an existing one (or at creation), which already
  // keeps the count above zero; no data is published by counting up. A second end makes
  // the side shared before the new handle can be used.
  if (core::atomic_fetch_add(header_->senders, 1U, std::memory_order_relaxed) >= 1U) {
    share_side(header_->ring.producer);
  }
  return true;
}

bool Channel::add_receiver() noexcept {
  if (shared_) return add_shared_end(false);
  if (core::atomic_fetch_add(header_->receivers, 1U, std::memory_order_relaxed) >= 1U) {
    share_side(header_->ring.consumer);
  }
  return true;
}

void Channel::remove_sender() noexcept {
  // SYNC POINT last-sender (release): pairs with senders()'s acquire; a receiver that
  // sees the count reach 0 sees every message published before it.
  if (!usable_in_this_process()) return;  // see remove_receiver
  if (shared_) {
    {
      const std::lock_guard<std::mutex> lock(ends_mutex_);
      core::atomic_fetch_sub(header_->peers[slot_].senders, 1U, std::memory_order_seq_cst);
    }
    close_side_if_unused(true);
    return;
  }
  const std::uint32_t before = core::atomic_fetch_sub(header_->senders, 1U, std::memory_order_acq_rel);
  if (before == 1U) {
    not_empty().notify_all();
  } else if (before == 2U) {
    exclusive_again(header_->ring.producer, header_->senders);
  }
}

void Channel::remove_receiver() noexcept {
  // An end inherited by a forked child and unusable there was never counted there (a
  // private channel's memory is the child's own copy, whose side locks may be held by
  // parent threads that do not exist here; a shared channel is unusable in a child only
  // if the fork found its peer table full). Nothing to do.
  if (!usable_in_this_process()) return;
  if (shared_) {
    {
      const std::lock_guard<std::mutex> lock(ends_mutex_);
      core::atomic_fetch_sub(header_->peers[slot_].receivers, 1U, std::memory_order_seq_cst);
    }
    close_side_if_unused(false);
    return;
  }
  const std::uint32_t before = core::atomic_fetch_sub(header_->receivers, 1U, std::memory_order_acq_rel);
  if (before == 1U) {
    not_full().notify_all();
  } else if (before == 2U) {
    exclusive_again(header_->ring.consumer, header_->receivers);
  }
}

void Channel::share_side(core::RingSide& side) noexcept {
  if (!is_process_local(fencing_)) return;  // such a side is never exclusive
  take_side(side);
  give_side(side, false);
}

bool Channel::take_side(core::RingSide& side) noexcept {
  const core::LockIdentity& who = ring_.lock_identity();
  core::SpinLock(side.lock, who.owner, who.recovery).lock();
  if (core::atomic_load(side.exclusive, std::memory_order_relaxed) == 0U) return false;
  core::atomic_store(side.exclusive, 0U, std::memory_order_relaxed);
  // SYNC POINT side-handshake: the heavy half (SideGuard has the light one). After it,
  // the side's user either saw `exclusive` cleared or shows `busy`.
  platform::heavy_barrier();
  for (std::uint32_t i = 0; core::atomic_load(side.busy, std::memory_order_acquire) != 0U; ++i) {
    if (i % kSpinsPerYield == kSpinsPerYield - 1) std::this_thread::yield();
    else core::cpu_relax();
  }
  return true;
}

void Channel::give_side(core::RingSide& side, bool exclusive) noexcept {
  // Release: pairs with SideGuard's acquire of `exclusive`, as in exclusive_again. The
  // side's end count cannot have changed meanwhile in a way that matters: a new end
  // makes the side shared under this lock before it is used.
  if (exclusive) core::atomic_store(side.exclusive, 1U, std::memory_order_release);
  core::SpinLock(side.lock).unlock();
}

void Channel::exclusive_again(core::RingSide& side, const std::uint32_t& ends) noexcept {
  if (!is_process_local(fencing_)) return;
  // Under the side's lock, so that this and share_side() take turns: an end added after
  // the check below makes the side shared again (and waits out its fast user).
  core::SpinLock lock(side.lock);
  const std::lock_guard<core::SpinLock> guard(lock);
  // Release: pairs with SideGuard's acquire of `exclusive`; the locked holders' writes
  // happen before the lock-free user's.
  if (core::atomic_load(ends, std::memory_order_acquire) == 1U) {
    core::atomic_store(side.exclusive, 1U, std::memory_order_release);
  }
}

ChannelStats Channel::stats() const noexcept {
  const core::SpscByteRing& ring = ring_.ring();
  ChannelStats s{};
  s.received = ring.popped();
  s.sent = ring.pushed();
  // Read on their own (not sent - received): in a race they can only come out low.
  s.queued = ring.size_approx();
  s.queued_bytes = ring.bytes_approx();
  s.capacity = ring.max_records();
  s.max_bytes = ring.data_bytes();
  s.max_message = ring.max_payload();
  s.wraps_undone = ring.wraps_undone();
  const core::SpscByteRing::HighWater hw = ring.high_water();
  s.high_water = hw.records;
  s.high_water_bytes = hw.bytes;
  s.senders = shared_ ? open_ends(true) : senders();
  s.receivers = shared_ ? open_ends(false) : receivers();
  s.parked_senders = not_full().waiters();
  s.parked_receivers = not_empty().waiters();
  s.lock_free_send = core::atomic_load(header_->ring.producer.exclusive, std::memory_order_relaxed) != 0U;
  s.lock_free_recv = core::atomic_load(header_->ring.consumer.exclusive, std::memory_order_relaxed) != 0U;
  return s;
}

}  // namespace xchan
