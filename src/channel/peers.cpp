// The peer table of a shared channel: which processes hold ends of it, and what the
// survivors do when one of them dies (see "processes that die" in channel.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <string_view>

#include "xchan/channel/channel.hpp"

namespace xchan {
namespace {

enum class Liveness : std::uint8_t { kAlive, kDead };

/// "/proc/<pid><suffix>" into `out` (NUL-terminated), false if it does not fit. Built by
/// hand rather than with snprintf: a forked child's atfork handler uses it (own_start_time),
/// where only async-signal-safe calls belong.
bool proc_path(std::uint32_t pid, std::string_view suffix, std::array<char, 64>& out) noexcept {
  const std::string_view prefix = "/proc/";
  std::memcpy(out.data(), prefix.data(), prefix.size());
  char* const digits = out.data() + prefix.size();
  const auto [end, ec] = std::to_chars(digits, out.data() + out.size(), pid);
  if (ec != std::errc{} || end + suffix.size() >= out.data() + out.size()) return false;
  std::memcpy(end, suffix.data(), suffix.size());
  end[suffix.size()] = '\0';
  return true;
}

/// Reads /proc/<pid>/stat into `buf`; returns its length, 0 if the process is gone, or -1
/// if it could not be read for another reason (then the process counts as alive: only
/// proof of death reclaims).
ssize_t read_stat(std::uint32_t pid, std::array<char, 1024>& buf) noexcept {
  std::array<char, 64> path{};
  if (!proc_path(pid, "/stat", path)) return -1;
  const int fd = open(path.data(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH ? 0 : -1;
  const ssize_t got = read(fd, buf.data(), buf.size() - 1);
  close(fd);
  if (got < 0) return errno == ESRCH ? 0 : -1;
  return got;
}

/// The state letter and start time (field 22) from a stat line. The command name (field
/// 2) is in parentheses and may hold anything, so parsing starts after its last ')'.
bool parse_stat(std::string_view line, char& state, std::uint64_t& start_time) noexcept {
  const std::size_t close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 >= line.size()) return false;
  std::string_view rest = line.substr(close + 2);  // "S ppid pgrp ..." : field 3 onwards
  state = rest[0];
  for (int field = 3; field < 22; ++field) {
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) return false;
    rest = rest.substr(space + 1);
  }
  const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), start_time);
  return ec == std::errc{};
}

/// Whether /proc/<pid>/fd/<fd> is still the segment (inode `inode`): a process that
/// exec'd (the descriptor is close-on-exec) or exited no longer has it. Unknown (no
/// permission, say) counts as having it.
bool still_holds_segment(std::uint32_t pid, std::uint32_t fd, std::uint64_t inode) noexcept {
  char fd_part[16] = "/fd/";
  const auto [end, ec] = std::to_chars(fd_part + 4, fd_part + sizeof fd_part - 1, fd);
  std::array<char, 64> path{};
  if (ec != std::errc{} || !proc_path(pid, std::string_view(fd_part, static_cast<std::size_t>(end - fd_part)), path)) {
    return true;
  }
  struct stat st {};
  if (stat(path.data(), &st) != 0) return errno != ENOENT;
  return static_cast<std::uint64_t>(st.st_ino) == inode;
}

/// Whether the process `pid` that started at `start_time` still exists. A zombie (dead,
/// not yet reaped by its parent) is dead; a stopped or traced process is alive.
Liveness liveness(std::uint32_t pid, std::uint64_t start_time) noexcept {
  std::array<char, 1024> buf{};
  const ssize_t n = read_stat(pid, buf);
  if (n == 0) return Liveness::kDead;
  char state = 0;
  std::uint64_t started = 0;
  if (n < 0 || !parse_stat(std::string_view(buf.data(), static_cast<std::size_t>(n)), state, started)) {
    return Liveness::kAlive;
  }
  if (start_time != 0 && started != start_time) return Liveness::kDead;  // the pid was reused
  return state == 'Z' || state == 'X' || state == 'x' ? Liveness::kDead : Liveness::kAlive;
}

/// This process's start time, or 0 if /proc cannot tell (then it is judged by its pid
/// alone).
std::uint64_t own_start_time() noexcept {
  std::array<char, 1024> buf{};
  const ssize_t n = read_stat(static_cast<std::uint32_t>(getpid()), buf);
  char state = 0;
  std::uint64_t started = 0;
  if (n <= 0 || !parse_stat(std::string_view(buf.data(), static_cast<std::size_t>(n)), state, started)) return 0;
  return started;
}

/// This process's pid namespace (the low bits of its inode), or 0 if unknown.
std::uint32_t own_pid_namespace() noexcept {
  struct stat st {};
  return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<std::uint32_t>(st.st_ino) : 0U;
}

constexpr std::uint32_t state_of(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word); }
constexpr std::uint64_t with_state(std::uint64_t word, std::uint32_t state) noexcept {
  return (word & ~std::uint64_t{0xffffffff}) | state;
}
constexpr std::uint64_t next_generation(std::uint64_t word, std::uint32_t state) noexcept {
  return ((word >> 32) + 1) << 32 | state;
}

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A slot claimed for a child that never took it (the fork failed) is given up after this.
constexpr std::int64_t kForkHandOverNs = 1'000'000'000;

// The shared Channel objects of this process, for the fork handlers. The mutex is held
// from before_fork to the after-fork handlers, so the list (and every object in it: their
// destructors leave it first) stays put across the fork.
std::mutex g_shared_mutex;
Channel* g_shared_head = nullptr;

/// What a new claim writes into a slot.
struct PeerSlotFields {
  std::uint32_t pid;
  std::uint32_t pid_namespace;
  std::uint64_t start_time;
  std::uint32_t senders;
  std::uint32_t receivers;
  std::uint32_t fd;
};

/// Claims a free slot of `peers` (a new generation), fills it and publishes it in `state`.
/// Returns its index, or kMaxPeers if none is free.
std::uint32_t claim_free_slot(PeerSlot (&peers)[kMaxPeers], const PeerSlotFields& f, PeerSlotState state) noexcept {
  for (std::uint32_t i = 0; i < kMaxPeers; ++i) {
    PeerSlot& slot = peers[i];
    std::uint64_t word = core::atomic_load(slot.state, std::memory_order_relaxed);
    if (state_of(word) != kSlotFree ||
        !core::atomic_compare_exchange(slot.state, word, next_generation(word, kSlotClaimed),
                                       std::memory_order_acquire)) {
      continue;
    }
    core::atomic_store(slot.pid, f.pid, std::memory_order_relaxed);
    core::atomic_store(slot.pid_namespace, f.pid_namespace, std::memory_order_relaxed);
    core::atomic_store(slot.start_time, f.start_time, std::memory_order_relaxed);
    core::atomic_store(slot.senders, f.senders, std::memory_order_seq_cst);
    core::atomic_store(slot.receivers, f.receivers, std::memory_order_seq_cst);
    core::atomic_store(slot.fd, f.fd, std::memory_order_relaxed);
    // Release: whoever sees the slot in its state sees whose it is.
    core::atomic_store(slot.state, with_state(next_generation(word, kSlotClaimed), state), std::memory_order_release);
    return i;
  }
  return kMaxPeers;
}

}  // namespace

bool Channel::claim_slot() noexcept {
  struct stat st {};
  if (fstat(memory_.fd(), &st) != 0) return false;
  segment_inode_ = static_cast<std::uint64_t>(st.st_ino);
  const auto pid = static_cast<std::uint32_t>(getpid());
  const std::uint64_t started = own_start_time();
  pid_namespace_ = own_pid_namespace();
  const PeerSlotFields fields{pid, pid_namespace_, started, 0U, 0U, static_cast<std::uint32_t>(memory_.fd())};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::uint32_t i = claim_free_slot(header_->peers, fields, kSlotLive);
    if (i != kMaxPeers) {
      slot_ = i;
      shared_ = true;
      return true;
    }
    // The table is full: maybe of the dead. No slot is ours yet (none is skipped); a
    // repair this makes holds the locks under id kMaxPeers + 1, which no recovery
    // frees should this process die meanwhile.
    slot_ = kMaxPeers;
    reap();
  }
  return false;
}

void Channel::release_slot() noexcept {
  // Every end of this object is closed (they hold it alive), so its counts are zero.
  PeerSlot& slot = header_->peers[slot_];
  const std::uint64_t word = core::atomic_load(slot.state, std::memory_order_relaxed);
  core::atomic_store(slot.state, with_state(word, kSlotFree), std::memory_order_release);
}

bool Channel::add_shared_end(bool sender) noexcept {
  // Counted in this process's slot first, so that a side closing at the same time (the
  // last other end leaving, or a reclaim) either sees this end or leaves kSideClosed for
  // the check below; sequentially consistent with close_side_if_unused. Under
  // ends_mutex_, so that a fork copies a count that matches the ends it copies.
  const std::lock_guard<std::mutex> lock(ends_mutex_);
  PeerSlot& slot = header_->peers[slot_];
  std::uint32_t& mine = sender ? slot.senders : slot.receivers;
  std::uint32_t& side = sender ? header_->senders : header_->receivers;
  core::atomic_fetch_add(mine, 1U, std::memory_order_seq_cst);
  std::uint32_t expected = kSideUnopened;
  if (core::atomic_compare_exchange(side, expected, kSideOpen, std::memory_order_seq_cst) ||
      expected == kSideOpen) {
    return true;
  }
  core::atomic_fetch_sub(mine, 1U, std::memory_order_seq_cst);  // closed for good
  return false;
}

std::uint32_t Channel::open_ends(bool senders) const noexcept {
  std::uint32_t total = 0;
  for (const PeerSlot& slot : header_->peers) {
    // A slot handed to a child counts from before the fork, until the child takes it.
    const std::uint32_t state = state_of(core::atomic_load(slot.state, std::memory_order_seq_cst));
    if (state != kSlotLive && state != kSlotForking) continue;
    total += core::atomic_load(senders ? slot.senders : slot.receivers, std::memory_order_seq_cst);
  }
  return total;
}

void Channel::close_side_if_unused(bool senders) noexcept {
  // Sequentially consistent with every count and reclaim: of two processes that drop
  // their last ends at the same time, at least one sees the other's, so the side closes.
  if (open_ends(senders) != 0U) return;
  std::uint32_t& side = senders ? header_->senders : header_->receivers;
  // SYNC POINT last-sender (release): as in the private case, a receiver that sees the
  // side closed sees every message published before.
  std::uint32_t expected = kSideOpen;
  if (!core::atomic_compare_exchange(side, expected, kSideClosed, std::memory_order_seq_cst)) return;
  if (senders) not_empty().notify_all();
  else not_full().notify_all();
}

bool Channel::judged_dead(std::uint32_t i, std::uint64_t& judged) const noexcept {
  const PeerSlot& slot = header_->peers[i];
  judged = core::atomic_load(slot.state, std::memory_order_acquire);
  if (state_of(judged) == kSlotForking) {
    // The child takes its slot within microseconds of the fork; one left this long
    // belongs to a fork that failed (or a child killed before its first instruction).
    const auto claimed = static_cast<std::int64_t>(core::atomic_load(slot.start_time, std::memory_order_relaxed));
    return now_ns() - claimed > kForkHandOverNs;
  }
  if (state_of(judged) != kSlotLive) return false;
  const std::uint32_t pid = core::atomic_load(slot.pid, std::memory_order_relaxed);
  const std::uint32_t ns = core::atomic_load(slot.pid_namespace, std::memory_order_relaxed);
  const std::uint64_t started = core::atomic_load(slot.start_time, std::memory_order_relaxed);
  // A pid of another pid namespace names some other process here: never judged.
  if (ns == 0U || ns != pid_namespace_) return false;
  if (liveness(pid, started) == Liveness::kDead) return true;
  // Alive, but a process that exec'd another program keeps its pid and start time and
  // lost the segment with its close-on-exec descriptor: its ends are gone all the same.
  return !still_holds_segment(pid, core::atomic_load(slot.fd, std::memory_order_relaxed), segment_inode_);
}

bool Channel::reclaim(std::uint32_t i, std::uint64_t judged) noexcept {
  PeerSlot& slot = header_->peers[i];
  // Only the claim that was judged: a slot that changed hands since has a new generation.
  if (!core::atomic_compare_exchange(slot.state, judged, with_state(judged, kSlotReclaiming),
                                     std::memory_order_acq_rel)) {
    return false;
  }
  // Locks it held, freed from its id to 0 only (a live holder's id is never touched).
  // It may have died between two stores of a publish: the ring is rebuilt from its
  // records (SpscByteRing::repair) with both sides held, producer first as everywhere.
  bool freed = false;
  for (core::RingSide* side : {&header_->ring.producer, &header_->ring.consumer}) {
    std::uint32_t holder = i + 1;
    freed = core::atomic_compare_exchange(side->lock.state, holder, 0U, std::memory_order_acq_rel) || freed;
  }
  if (freed) {
    // Taken with the shallow recovery: another dead holder met here only has its lock
    // freed (this repair covers what it left), never a nested reclaim, which would wait
    // for the producer lock this thread holds.
    const core::LockIdentity who{slot_ + 1, &shallow_recovery_};
    const core::SideGuard producer(header_->ring.producer, who);
    const core::SideGuard consumer(header_->ring.consumer, who);
    ring_.repair_held();
  }
  const std::uint32_t senders = core::atomic_exchange(slot.senders, 0U, std::memory_order_seq_cst);
  const std::uint32_t receivers = core::atomic_exchange(slot.receivers, 0U, std::memory_order_seq_cst);
  // A hand-over slot that no child took is no death: its ends were never used.
  const bool was_live = state_of(judged) == kSlotLive;
  const std::uint32_t died =
      was_live ? (senders != 0U ? kSendersDied : 0U) | (receivers != 0U ? kReceiversDied : 0U) : 0U;
  if (died != 0U) core::atomic_fetch_or(header_->peer_died, died, std::memory_order_seq_cst);
  core::atomic_store(slot.state, with_state(judged, kSlotFree), std::memory_order_seq_cst);
  close_side_if_unused(true);
  close_side_if_unused(false);
  // Waiters of both sides look again: a lock, room or the end of the channel may be there.
  not_empty().notify_all();
  not_full().notify_all();
  return true;
}

std::size_t Channel::reap_dead_peers() noexcept {
  return shared_ && usable_in_this_process() ? reap() : 0;
}

std::size_t Channel::reap() noexcept {
  std::size_t reclaimed = 0;
  for (std::uint32_t i = 0; i < kMaxPeers; ++i) {
    std::uint64_t judged = 0;
    if (i != slot_ && judged_dead(i, judged) && reclaim(i, judged)) ++reclaimed;
  }
  next_reap_ns_.store(now_ns() + std::chrono::nanoseconds(kLivenessSlice).count(), std::memory_order_relaxed);
  return reclaimed;
}

void Channel::reap_now_and_then() noexcept {
  if (now_ns() >= next_reap_ns_.load(std::memory_order_relaxed)) reap_dead_peers();
}

bool Channel::free_dead_holders_lock(void* self, std::uint32_t holder) noexcept {
  auto* channel = static_cast<Channel*>(self);
  if (holder == 0U || holder > kMaxPeers || holder - 1 == channel->slot_) return false;
  std::uint64_t judged = 0;
  if (!channel->judged_dead(holder - 1, judged)) return false;
  bool freed = false;
  for (core::RingSide* side : {&channel->header_->ring.producer, &channel->header_->ring.consumer}) {
    std::uint32_t expected = holder;
    freed = core::atomic_compare_exchange(side->lock.state, expected, 0U, std::memory_order_acq_rel) || freed;
  }
  return freed;  // its slot is reclaimed by the next look for dead peers
}

bool Channel::holder_gone(void* self, std::uint32_t holder) noexcept {
  auto* channel = static_cast<Channel*>(self);
  if (holder == 0U || holder > kMaxPeers || holder - 1 == channel->slot_) return false;
  std::uint64_t judged = 0;
  return channel->judged_dead(holder - 1, judged) && channel->reclaim(holder - 1, judged);
}

// ---- fork: a child gets its own copies of the parent's ends -----------------------------

void Channel::remember_shared() noexcept {
  const std::lock_guard<std::mutex> lock(g_shared_mutex);
  next_shared_ = g_shared_head;
  if (g_shared_head != nullptr) g_shared_head->prev_shared_ = this;
  g_shared_head = this;
}

void Channel::forget_shared() noexcept {
  const std::lock_guard<std::mutex> lock(g_shared_mutex);
  if (prev_shared_ != nullptr) prev_shared_->next_shared_ = next_shared_;
  else if (g_shared_head == this) g_shared_head = next_shared_;
  if (next_shared_ != nullptr) next_shared_->prev_shared_ = prev_shared_;
  prev_shared_ = next_shared_ = nullptr;
}

void Channel::prepare_fork() noexcept {
  // Held until after the fork (both sides), so that the counts copied here are the ends
  // the child's memory holds.
  ends_mutex_.lock();
  fork_slot_ = kMaxPeers;
  if (!usable_in_this_process()) return;  // inherited and unusable here: nothing to copy
  const PeerSlot& mine = header_->peers[slot_];
  const std::uint32_t senders = core::atomic_load(mine.senders, std::memory_order_relaxed);
  const std::uint32_t receivers = core::atomic_load(mine.receivers, std::memory_order_relaxed);
  // Counted before the fork: the parent closing its ends right after cannot close a side
  // the child still has ends of. The descriptor number is the same in the child.
  const PeerSlotFields fields{static_cast<std::uint32_t>(getpid()), pid_namespace_,
                              static_cast<std::uint64_t>(now_ns()), senders, receivers,
                              static_cast<std::uint32_t>(memory_.fd())};
  fork_slot_ = claim_free_slot(header_->peers, fields, kSlotForking);
  // kMaxPeers if the table is full: the child's copies then stay unusable there.
}

void Channel::adopt_fork_slot() noexcept {
  if (fork_slot_ == kMaxPeers) return;  // none was claimed: stays unusable in the child
  PeerSlot& slot = header_->peers[fork_slot_];
  const std::uint64_t word = core::atomic_load(slot.state, std::memory_order_relaxed);
  core::atomic_store(slot.pid, static_cast<std::uint32_t>(getpid()), std::memory_order_relaxed);
  core::atomic_store(slot.start_time, own_start_time(), std::memory_order_relaxed);
  core::atomic_store(slot.state, with_state(word, kSlotLive), std::memory_order_release);
  slot_ = fork_slot_;
  fork_slot_ = kMaxPeers;
  fork_generation_ = current_fork_generation();
  ring_.set_lock_identity(core::LockIdentity{slot_ + 1, &recovery_});
  next_reap_ns_.store(0, std::memory_order_relaxed);
}

void Channel::before_fork() noexcept {
  g_shared_mutex.lock();
  for (Channel* c = g_shared_head; c != nullptr; c = c->next_shared_) c->prepare_fork();
}

void Channel::after_fork_in_parent() noexcept {
  // The slots claimed for the child stay kSlotForking until it takes them (or, if the
  // fork failed, until a survivor gives them up after kForkHandOverNs).
  for (Channel* c = g_shared_head; c != nullptr; c = c->next_shared_) {
    c->fork_slot_ = kMaxPeers;
    c->ends_mutex_.unlock();
  }
  g_shared_mutex.unlock();
}

void Channel::after_fork_in_child() noexcept {
  for (Channel* c = g_shared_head; c != nullptr; c = c->next_shared_) {
    c->adopt_fork_slot();
    c->ends_mutex_.unlock();
  }
  g_shared_mutex.unlock();
}

}  // namespace xchan
