// How a call reaches an end's channel, shared by ends.cpp, receive.cpp and send.cpp: the
// open check, close, and EndUse, which keeps the channel usable for the length of a call
// and waits with the GIL released.
#pragma once

#include <memory>

#include "ends.hpp"
#include "errors.hpp"
#include "waiting.hpp"

namespace xchan::py {

inline ModuleState* state(EndObject* self) noexcept {
  return self->owner ? self->owner : state_of(Py_TYPE(self));
}

/// The channel the end's handle holds (nullptr once the handle is closed).
inline const std::shared_ptr<Channel>& channel_of(EndObject* self) noexcept {
  return self->is_sender ? self->tx.channel() : self->rx.channel();
}

/// True while calls may use the end: not closed (or closing), and its channel usable in
/// this process (not inherited across a fork). GIL held.
inline bool is_open(EndObject* self) noexcept {
  const std::shared_ptr<Channel>& ch = channel_of(self);
  return core::atomic_load(self->closing, std::memory_order_relaxed) == 0U && ch && ch->usable_in_this_process();
}

/// Sets the error for a call on an end that is not open: ChannelClosed, or ChannelError for
/// an end inherited across a fork. Returns nullptr.
PyObject* set_closed_error(EndObject* self);

/// Closes the end: at once, or at the end of the calls that pin it (EndUse) if any. Either
/// way its blocked calls wake and raise ChannelClosed, and none of its calls moves another
/// message. Idempotent. GIL held.
void close_end(EndObject* self) noexcept;

/// Use of an end's channel for the length of one call. While the GIL is held the channel
/// is reached through a plain pointer, and the end is pinned: a close() that Python code
/// run meanwhile makes (a finalizer during an allocation, a __reduce__ during pickling)
/// takes effect at the end of the call. Copying the end's shared_ptr instead would cost an
/// atomic on a cache line that every end of the channel, in every interpreter, shares.
/// Before the GIL is released, wait() trades the pin for a counted reference, so that
/// other threads may close the end meanwhile: the wait then wakes, and recheck() reports
/// the close. Contract for callers: after anything that may have let other Python code run
/// (a wait, or running Python code themselves), call recheck() before the next transfer.
class EndUse {
 public:
  explicit EndUse(EndObject* self) noexcept : self_(self) {
    if (!is_open(self)) {
      set_closed_error(self);
      return;
    }
    channel_ = channel_of(self).get();
    ++self->busy;
    pinned_ = true;
  }
  EndUse(const EndUse&) = delete;
  EndUse& operator=(const EndUse&) = delete;
  ~EndUse() {
    // A thread that CPython ends at exit unwinds through here without a thread state:
    // leave the pin (the process is exiting) rather than touch the object unlocked.
    if (pinned_ && thread_has_python()) unpin();
  }

  /// The channel, or nullptr (the exception set) if the end was not open.
  [[nodiscard]] Channel* get() const noexcept { return channel_; }

  /// The channel if the end is still open, else nullptr with the error set.
  [[nodiscard]] Channel* recheck() noexcept {
    if (is_open(self_)) return channel_;
    set_closed_error(self_);
    return nullptr;
  }

  /// True once a wait() released the GIL: other threads' Python code may have run since
  /// (changed an object being sent, closed this end).
  [[nodiscard]] bool released_gil() const noexcept { return released_gil_; }

  /// wait_for() on the channel: first a short poll with the GIL held (a busy peer usually
  /// delivers within a microsecond, sooner than the GIL is dropped and taken back), then
  /// with the GIL released, the channel kept alive by a counted reference from then on,
  /// until ready, the deadline, a signal, or this end being closed.
  Status wait(ModuleState* st, bool writable, std::size_t n, Deadline deadline) {
    if (deadline.is_now()) {
      // No waiting, but room a wrap holds back comes back now (a short critical section
      // of the receivers' side, never a wait for Python code: fine with the GIL held).
      return writable && channel_->reclaim_stranded(n) ? Status::kOk : Status::kTimeout;
    }
    // Polls back off exponentially: each poll pulls the line the peer is writing away
    // from it, and a reader that catches up with a busy writer does better to let a few
    // messages gather than to take them one cache miss at a time.
    for (int pauses = 1; pauses <= kGilHeldMaxPauses; pauses *= 2) {
      for (int i = 0; i < pauses; ++i) core::cpu_relax();
      if (writable ? channel_->writable(n) : channel_->readable()) return Status::kOk;
    }
    if (held_ == nullptr) {
      held_ = channel_of(self_);
      unpin();
    }
    released_gil_ = true;
    return wait_for(st, *channel_, writable, n, deadline, &self_->closing);
  }

 private:
  void unpin() noexcept {
    if (!pinned_) return;
    pinned_ = false;
    if (--self_->busy == 0 && self_->close_pending) {
      self_->close_pending = false;
      close_end(self_);
    }
  }

  static constexpr int kGilHeldMaxPauses = 64;  // see docs/performance.md, "GIL-held polls"

  EndObject* self_;
  Channel* channel_ = nullptr;
  std::shared_ptr<Channel> held_;
  bool pinned_ = false;
  bool released_gil_ = false;
};

}  // namespace xchan::py
