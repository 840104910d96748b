// A bounded channel of byte messages: an MPMC byte ring, two eventcounts (not-empty and
// not-full) and the count of open ends. Sender and Receiver (ends.hpp) are the handles
// users hold; this class is the shared object they point to.
//
// Design:
//  - Everything the two sides share lives in one ChannelHeader at the start of one memory
//    block, followed by the record buffer: standard-layout, offsets only, so the same code
//    runs over a shared-memory segment (ChannelConfig::shared).
//  - Non-blocking first: try_send_with / try_recv_with never wait. Waiting is separate:
//    wait_writable / wait_readable spin briefly, then park on an eventcount until the
//    condition may hold. Blocking send/recv (ends.hpp) loop over the two. Keeping waits
//    apart from transfers lets the Python layer hold its GIL only for the transfer, and
//    lets a future select() wait on many channels.
//  - A notifier that finds nobody parked makes no syscall, and pays at most one locked
//    read-modify-write (none while the eventcount runs its light protocol: EventCount).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <type_traits>

#include "xchan/channel/deadline.hpp"
#include "xchan/channel/event_count.hpp"
#include "xchan/core/memory_block.hpp"
#include "xchan/core/mpmc_byte_ring.hpp"

namespace xchan {

struct ChannelConfig {
  /// Messages in flight at most (>= 1).
  std::uint64_t capacity = 1024;
  /// Bytes of record buffer, rounded up to a power of two (>= 4096). Bounds the memory
  /// a channel holds; the largest message is max_message_for(max_bytes).
  std::uint64_t max_bytes = std::uint64_t{1} << 20;
  /// Polls of the condition before a waiter parks in the kernel (0: park at once).
  std::uint32_t spin_iterations = 4096;
  /// Place the channel in a shared segment (MemoryBlock::map_new_shared) that other
  /// processes attach to through its descriptor (Channel::attach). Both sides then take
  /// their locks and the eventcounts use symmetric fencing (membarrier(2) reaches only
  /// this process).
  bool shared = false;
};

/// Counters of one channel, read without stopping it (each field is exact only when the
/// channel is quiescent; `queued`, `queued_bytes` and the high-water marks are never more
/// than was in flight).
struct ChannelStats {
  std::uint64_t sent;             // messages ever published
  std::uint64_t received;         // messages ever consumed
  std::uint64_t queued;           // messages in flight
  std::uint64_t queued_bytes;     // their records' bytes: 8-byte header + payload rounded up
                                  // to 8 each (not the room a wrap skips)
  std::uint64_t capacity;         // messages in flight at most
  std::uint64_t max_bytes;        // buffer bytes
  std::uint64_t max_message;      // largest payload
  std::uint64_t wraps_undone;     // room taken back from behind a wrap (reclaim_stranded)
  std::uint64_t high_water;       // most messages seen in flight, exact whenever the channel
                                  // filled up (SpscByteRing::high_water); never falls
  std::uint64_t high_water_bytes; // most queued_bytes seen, likewise
  std::uint32_t senders;          // open Sender handles
  std::uint32_t receivers;        // open Receiver handles
  std::uint32_t parked_senders;   // senders parked (or about to park) for room
  std::uint32_t parked_receivers; // receivers parked (or about to park) for messages
  bool lock_free_send;            // the senders' side runs without its lock (one sender)
  bool lock_free_recv;            // the receivers' side likewise (one receiver)
};

/// One process attached to a shared channel (its Channel object), in the segment's table.
/// The owner writes its fields; another process that finds the owner dead reclaims the
/// slot (see Channel::reap_dead_peers).
struct PeerSlot {
  // PeerSlotState in the low 32 bits, a generation bumped by every claim in the high 32:
  // a survivor reclaims only the claim it judged dead, never the next owner's.
  std::uint64_t state;
  std::uint32_t pid;
  std::uint32_t pid_namespace;  // its pid namespace (inode, low bits): pids mean nothing elsewhere
  std::uint64_t start_time;     // the process's start time (/proc/<pid>/stat), against pid reuse
  std::uint32_t senders;        // its open ends
  std::uint32_t receivers;
  std::uint32_t fd;             // its descriptor of the segment: gone once it execs or exits
  std::uint32_t reserved;
};

// kSlotForking: claimed by a process about to fork, for its child (Channel::prepare_fork);
// pid is the parent's and start_time the claim's CLOCK_MONOTONIC time in ns until the
// child takes it.
enum PeerSlotState : std::uint32_t {
  kSlotFree = 0,
  kSlotClaimed = 1,
  kSlotLive = 2,
  kSlotReclaiming = 3,
  kSlotForking = 4,
};

/// Processes that may attach to one shared channel at the same time.
inline constexpr std::uint32_t kMaxPeers = 64;

/// Shared state of one channel; the record buffer follows at `data_offset`.
struct ChannelHeader {
  std::uint64_t magic;  // kChannelMagic
  std::uint32_t version;
  std::uint32_t spin_iterations;
  std::uint64_t data_offset;
  std::uint64_t data_bytes;
  std::uint32_t fencing;  // Fencing of both eventcounts, fixed at creation
  std::uint32_t reserved;
  core::MpmcRingHeader ring;
  alignas(core::kCacheLine) EventCountWord not_empty;
  alignas(core::kCacheLine) EventCountWord not_full;
  // Open ends. In a shared channel, whose ends live in several processes that may die,
  // the counts live per process in `peers`, and these two are kSideUnopened, kSideOpen
  // while any end of that kind is open anywhere, then kSideClosed for good.
  alignas(core::kCacheLine) std::uint32_t senders;
  std::uint32_t receivers;
  // Shared channels: kSendersDied / kReceiversDied once a dead process's ends of that
  // kind were reclaimed; a side closed that way reports kPeerDied rather than kClosed.
  alignas(core::kCacheLine) std::uint32_t peer_died;
  std::uint32_t reserved2;
  PeerSlot peers[kMaxPeers];
};
static_assert(std::is_standard_layout_v<ChannelHeader>);
static_assert(std::is_trivially_copyable_v<ChannelHeader>);

inline constexpr std::uint64_t kChannelMagic = 0x6c6e'6168'436e'6168ULL;  // "hanChanl"
inline constexpr std::uint32_t kChannelVersion = 6;
inline constexpr std::uint32_t kSideUnopened = 0;
inline constexpr std::uint32_t kSideOpen = 1;
inline constexpr std::uint32_t kSideClosed = 2;
inline constexpr std::uint32_t kSendersDied = 1;
inline constexpr std::uint32_t kReceiversDied = 2;

/// Largest payload a channel created with `max_bytes` accepts.
[[nodiscard]] std::uint64_t max_message_for(std::uint64_t max_bytes) noexcept;

class Channel {
 public:
  /// Creates a channel with no open ends. nullptr and `status` set on a bad config
  /// (kInvalidArgument) or when memory cannot be mapped (kNoMemory). Throws
  /// std::bad_alloc only if the small bookkeeping allocation fails.
  [[nodiscard]] static std::shared_ptr<Channel> create(const ChannelConfig& config, Status& status);

  /// Maps the shared channel whose segment `fd` refers to (shared_fd() of a channel made
  /// with `shared`, in this or another process; the caller keeps its `fd`) and checks
  /// everything read from it: the header's magic, layout version, sizes and fencing, and
  /// the ring's. Ends opened on the result count in the segment like any other.
  /// nullptr and `status` set: kInvalidArgument (not a segment), kCorrupted (validation
  /// failed), kNoMemory (cannot map). Throws std::bad_alloc like create().
  [[nodiscard]] static std::shared_ptr<Channel> attach(int fd, Status& status);

  /// The shared segment's descriptor (owned by this object, close-on-exec), or -1 if the
  /// channel is private to this process.
  [[nodiscard]] int shared_fd() const noexcept { return memory_.fd(); }

  // ---- processes that die (shared channels) ------------------------------------------
  //
  // Each Channel object of a shared channel holds a slot in the segment's peer table with
  // its process's pid and start time and its open ends. A process that dies (SIGKILL, a
  // crash, OOM) cannot clean up, so the survivors do: a waiter parked on a shared channel
  // wakes every kLivenessSlice to look, a non-blocking call that finds nothing to do looks
  // at most that often, and a side lock held for long makes its waiters look at its
  // holder. Looking checks each other live slot's process (/proc/<pid>/stat: gone, a
  // zombie, or another start time is dead; stopped is alive); reclaiming a dead one drops
  // its ends from the counts, frees a side lock it held (the records it was writing were
  // never published, so they are never delivered; a record it was reading stays for the
  // next receiver), and wakes every waiter. No daemon, no thread, nothing on the fast path.

  /// How often parked waiters of a shared channel look for dead peers.
  static constexpr std::chrono::milliseconds kLivenessSlice{250};

  /// Reclaims the slots of processes that died. Returns how many. Any thread; no-op for a
  /// private channel.
  std::size_t reap_dead_peers() noexcept;

  /// reap_dead_peers() if kLivenessSlice has passed since the last look (for calls that
  /// found nothing to do, and waits that timed out). Any thread.
  void reap_now_and_then() noexcept;

  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();

  /// Process-unique id, also its key in ChannelRegistry.
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  // ---- transfers: never block (beyond a same-side lock held for one memcpy) ----------

  /// Reserves `n` bytes, calls fill(std::span<std::byte>) -> size_t (bytes used, <= n) to
  /// write the message in place, publishes it and wakes a receiver if one is parked.
  /// kClosed when no receiver is open (kPeerDied if a process that held receivers died:
  /// closed_status), kFull when there is no room now, kTooLarge when n
  /// exceeds the largest message. `fill` runs under the producer lock: keep it short and
  /// never let it block or call back into the channel. Any thread.
  template <class Fill>
  [[nodiscard]] Status try_send_with(std::size_t n, Fill&& fill) noexcept(noexcept(fill(std::span<std::byte>{})));

  /// Batch try_send_with: writes messages 0..count-1 in order while they fit, under one
  /// producer lock, one publish and one wake-up. size_of(i) -> size_t gives message i's
  /// size, fill(i, std::span<std::byte>) -> size_t writes it. `sent` counts the prefix that
  /// went. kOk when sent > 0; otherwise why message 0 could not go (kFull, kClosed,
  /// kTooLarge). A too-large message after the first stops the batch before it.
  template <class SizeOf, class Fill>
  [[nodiscard]] Status try_send_many_with(std::size_t count, SizeOf&& size_of, Fill&& fill,
                                          std::size_t& sent) noexcept;

  /// Takes the oldest message: calls drain(std::span<const std::byte>) on its bytes (valid
  /// only during the call, under the consumer lock), then frees its room and wakes a
  /// parked sender. A drain that returns bool may refuse (false): the message stays queued
  /// and the call returns kNoMemory if nothing was taken. kEmpty when nothing is queued, kClosed when nothing is queued and no
  /// sender is open (kPeerDied if a process that held senders died: closed_status),
  /// kCorrupted if the ring fails validation. Any thread.
  template <class Drain>
  [[nodiscard]] Status try_recv_with(Drain&& drain) noexcept(noexcept(drain(std::span<const std::byte>{})));

  /// Like try_recv_with for up to `max` messages under one lock and one wake-up; `got`
  /// is how many were drained (kOk iff got > 0).
  template <class Drain>
  [[nodiscard]] Status try_recv_many_with(std::size_t max, Drain&& drain, std::size_t& got) noexcept(
      noexcept(drain(std::span<const std::byte>{})));

  // ---- waiting: no data moves ----------------------------------------------------------

  /// Blocks until a message of `n` bytes may fit or no receiver is open (kOk), or until
  /// `deadline` (kTimeout) or a signal (kInterrupted). A following try may still find the
  /// room taken by another sender; loop. `spin` polls happen before parking. When the
  /// room is held back by a wrap the receivers have not reached (a burst sent after a
  /// drain, by a thread that receives only afterwards), waiting cannot bring it: after
  /// kStrandedWait without it, or at the deadline (at once for a deadline already past),
  /// this takes it back (reclaim_stranded; private channels only). `cancel` (optional): a flag another thread may
  /// set, then call wake_senders(); the wait returns kOk once it reads nonzero, and the
  /// caller checks its flag (the handle being closed, say). Any thread.
  [[nodiscard]] Status wait_writable(std::size_t n, Deadline deadline, std::uint32_t spin,
                                     const std::uint32_t* cancel = nullptr) noexcept;

  /// Takes back room for a message of `n` bytes that a wrap holds behind receivers that
  /// have not reached it (SpscByteRing::undo_wrap): holds the producer side and, for a
  /// moment, the consumer side. True when `n` bytes then fit. Costly (a process-wide
  /// barrier when a receiver runs lock-free, and a copy of the records since the wrap), so
  /// for a sender that would otherwise fail or wait in vain. Any thread.
  bool reclaim_stranded(std::size_t n) noexcept;

  /// How long a sender waits for room held back by a wrap before taking it back.
  static constexpr std::chrono::milliseconds kStrandedWait{2};

  /// Blocks until a message may be queued or no sender is open (kOk), or until `deadline`
  /// (kTimeout) or a signal (kInterrupted). `cancel` as in wait_writable, with
  /// wake_receivers(). Any thread.
  [[nodiscard]] Status wait_readable(Deadline deadline, std::uint32_t spin,
                                     const std::uint32_t* cancel = nullptr) noexcept;

  /// Wake every thread parked in wait_readable (wake_senders: wait_writable), so that each
  /// re-checks its condition and its cancel flag: for a caller that has just set one.
  /// Never blocks; costs a futex wake only when someone is parked. Any thread.
  void wake_receivers() noexcept { not_empty().notify_all(); }
  void wake_senders() noexcept { not_full().notify_all(); }

  /// False in a child forked after this channel was created: its memory is the child's
  /// private copy, so the child's ends would see what the parent also receives (every
  /// message twice) and send what nobody reads. Callers refuse to use such a channel.
  /// A shared channel stays usable in the child: fork duplicates its ends, as it
  /// duplicates file descriptors (the parent counts them for the child in a slot of its
  /// own before forking, and the child takes that slot: pthread_atfork handlers). Only if
  /// the peer table was full at the fork is it unusable there. Any thread.
  [[nodiscard]] bool usable_in_this_process() const noexcept {
    return fork_generation_ == current_fork_generation();
  }
  /// Forks this process has gone through as a child since count_forks() was first called
  /// (0 in the original process). Any thread.
  [[nodiscard]] static std::uint64_t current_fork_generation() noexcept {
    return g_fork_generation_.load(std::memory_order_relaxed);
  }
  /// Makes sure forks are counted from now on (a pthread_atfork child handler, installed
  /// once per process) and returns current_fork_generation(). Whatever must be refused in
  /// a forked child records this when it is created. Any thread.
  static std::uint64_t count_forks() noexcept;

  /// Non-blocking readiness checks (same conditions as the waits). Any thread.
  [[nodiscard]] bool writable(std::size_t n) const noexcept {
    return receivers() == 0 || ring_.ring().can_reserve(n);
  }
  /// What a call reports once the other side is gone: kPeerDied if a process that died
  /// held ends of it, else kClosed. `sending` names the caller's side.
  [[nodiscard]] Status closed_status(bool sending) const noexcept {
    const std::uint32_t died = core::atomic_load(header_->peer_died, std::memory_order_relaxed);
    return (died & (sending ? kReceiversDied : kSendersDied)) != 0U ? Status::kPeerDied : Status::kClosed;
  }
  [[nodiscard]] bool readable() const noexcept {
    return ring_.ring().has_records() || senders() == 0;
  }

  // ---- ends ------------------------------------------------------------------------

  /// Counts one more open end of that kind. Called by Sender/Receiver only. False (and
  /// nothing counted) if that side of a shared channel is closed for good: the new handle
  /// is then closed too.
  [[nodiscard]] bool add_sender() noexcept;
  [[nodiscard]] bool add_receiver() noexcept;
  /// Drops one end; the last sender (receiver) wakes every parked receiver (sender).
  void remove_sender() noexcept;
  void remove_receiver() noexcept;
  // A side with one open end runs without its lock (MpmcByteRing's `exclusive`): a second
  // end makes it shared first, dropping back to one end makes it exclusive again.

  /// Open senders (receivers); for a shared channel, 1 while any is open anywhere.
  [[nodiscard]] std::uint32_t senders() const noexcept {
    // Acquire: pairs with remove_sender's release so a receiver that sees 0 senders also
    // sees every message they published (SYNC POINT last-sender).
    const std::uint32_t n = core::atomic_load(header_->senders, std::memory_order_acquire);
    return shared_ ? static_cast<std::uint32_t>(n == kSideOpen) : n;
  }
  [[nodiscard]] std::uint32_t receivers() const noexcept {
    const std::uint32_t n = core::atomic_load(header_->receivers, std::memory_order_acquire);
    return shared_ ? static_cast<std::uint32_t>(n == kSideOpen) : n;
  }

  // ---- introspection -------------------------------------------------------------------

  [[nodiscard]] ChannelStats stats() const noexcept;
  [[nodiscard]] std::uint64_t max_message() const noexcept { return ring_.ring().max_payload(); }
  [[nodiscard]] std::uint32_t spin_iterations() const noexcept { return header_->spin_iterations; }

 private:
  Channel() = default;
  /// Validates the header and ring in `memory` and makes the handle (create/attach).
  static std::shared_ptr<Channel> open(core::MemoryBlock memory, Status& status);

  // Shared channels (peer table; src/channel/peers.cpp).
  void remember_shared() noexcept;
  void forget_shared() noexcept;
  void prepare_fork() noexcept;
  void adopt_fork_slot() noexcept;
  static void before_fork() noexcept;
  static void after_fork_in_parent() noexcept;
  static void after_fork_in_child() noexcept;
  [[nodiscard]] bool claim_slot() noexcept;
  std::size_t reap() noexcept;  // reap_dead_peers without its checks
  void release_slot() noexcept;
  [[nodiscard]] bool reclaim(std::uint32_t slot, std::uint64_t judged) noexcept;
  [[nodiscard]] bool judged_dead(std::uint32_t slot, std::uint64_t& judged) const noexcept;
  [[nodiscard]] std::uint32_t open_ends(bool senders) const noexcept;
  void close_side_if_unused(bool senders) noexcept;
  [[nodiscard]] bool add_shared_end(bool sender) noexcept;
  static bool holder_gone(void* self, std::uint32_t holder) noexcept;
  static bool free_dead_holders_lock(void* self, std::uint32_t holder) noexcept;

  core::MemoryBlock memory_;
  [[nodiscard]] EventCount not_empty() const noexcept { return EventCount(header_->not_empty, fencing_); }
  [[nodiscard]] EventCount not_full() const noexcept { return EventCount(header_->not_full, fencing_); }
  void share_side(core::RingSide& side) noexcept;
  // Holds `side` against all its users: takes its lock and, if it was exclusive, clears
  // that and waits out its lock-free user. Returns whether it was exclusive, for give_side.
  bool take_side(core::RingSide& side) noexcept;
  void give_side(core::RingSide& side, bool exclusive) noexcept;
  void exclusive_again(core::RingSide& side, const std::uint32_t& ends) noexcept;

  ChannelHeader* header_ = nullptr;
  Fencing fencing_ = Fencing::kSymmetric;  // copy of header_->fencing
  core::MpmcByteRing ring_;
  std::uint64_t id_ = 0;
  std::uint64_t fork_generation_ = 0;  // current_fork_generation() at creation
  bool shared_ = false;                              // holds slot_ (set once it is claimed)
  std::mutex ends_mutex_;                            // this object's slot counts vs prepare_fork
  std::uint32_t fork_slot_ = kMaxPeers;              // claimed for a child (prepare_fork)
  Channel* prev_shared_ = nullptr;                   // the process's shared channels (peers.cpp)
  Channel* next_shared_ = nullptr;
  std::uint32_t slot_ = 0;                           // this object's peer slot (shared_)
  std::uint32_t pid_namespace_ = 0;                  // this process's (shared_)
  std::uint64_t segment_inode_ = 0;                  // the memfd's inode (shared_)
  core::LockRecovery recovery_;                      // holder_gone on this (shared_)
  core::LockRecovery shallow_recovery_;              // free_dead_holders_lock, inside reclaim
  std::atomic<std::int64_t> next_reap_ns_{0};        // reap_now_and_then's schedule
  static inline std::atomic<std::uint64_t> g_fork_generation_{0};  // bumped in forked children
};

// ---- inline transfers ------------------------------------------------------------------

template <class Fill>
Status Channel::try_send_with(std::size_t n, Fill&& fill) noexcept(noexcept(fill(std::span<std::byte>{}))) {
  if (receivers() == 0) return closed_status(true);
  // Published, then the producer side is let go.
  const Status s = ring_.try_push_with(n, std::forward<Fill>(fill));
  if (s == Status::kFull && shared_) reap_now_and_then();
  if (s != Status::kOk) return s;
  not_empty().notify(1);
  return Status::kOk;
}

template <class SizeOf, class Fill>
Status Channel::try_send_many_with(std::size_t count, SizeOf&& size_of, Fill&& fill,
                                   std::size_t& sent) noexcept {
  sent = 0;
  if (receivers() == 0) return closed_status(true);
  Status s = Status::kOk;
  {
    core::MpmcByteRing::Writer writer(ring_);
    std::span<std::byte> out;
    while (sent < count && (s = writer.try_reserve(size_of(sent), out)) == Status::kOk) {
      writer.commit(fill(sent, out));
      ++sent;
    }
  }
  if (sent == 0) {
    if (shared_) reap_now_and_then();
    return s == Status::kOk ? Status::kFull : s;
  }
  not_empty().notify(sent > 0x7fffffff ? EventCount::kAll : static_cast<int>(sent));
  return Status::kOk;
}

template <class Drain>
Status Channel::try_recv_with(Drain&& drain) noexcept(noexcept(drain(std::span<const std::byte>{}))) {
  std::size_t got = 0;
  return try_recv_many_with(1, std::forward<Drain>(drain), got);
}

template <class Drain>
Status Channel::try_recv_many_with(std::size_t max, Drain&& drain, std::size_t& got) noexcept(
    noexcept(drain(std::span<const std::byte>{}))) {
  got = 0;
  Status s = Status::kOk;
  {
    core::MpmcByteRing::Reader reader(ring_);
    std::span<const std::byte> in;
    while (got < max && (s = reader.try_peek(in)) == Status::kOk) {
      if constexpr (std::is_same_v<decltype(drain(in)), bool>) {
        if (!drain(in)) {  // the drain refused (e.g. out of memory): the message stays
          s = Status::kNoMemory;
          break;
        }
      } else {
        drain(in);
      }
      reader.release();
      ++got;
    }
    // About to report empty (and the caller to wait): tell empty from garbage once. A
    // record that landed meanwhile is left for the caller's next try.
    if (got == 0 && s == Status::kEmpty && reader.verify_empty() == Status::kCorrupted) {
      s = Status::kCorrupted;
    }
  }  // released space published, then the consumer lock is released
  if (got > 0) {
    not_full().notify_all();
    return Status::kOk;
  }
  if (s == Status::kEmpty && senders() == 0) {
    // The last sender may have published just before leaving: having seen 0 senders (acquire)
    // we see all its messages, so one more look decides between a message and closed.
    return ring_.ring().has_records() ? try_recv_many_with(max, std::forward<Drain>(drain), got)
                                      : closed_status(false);
  }
  if (s == Status::kEmpty && shared_) reap_now_and_then();
  return s;
}

}  // namespace xchan
