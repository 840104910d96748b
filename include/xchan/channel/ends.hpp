// The handles users hold: Sender and Receiver. Each open handle counts as one end of its
// channel; copying a handle opens another end (a clone), destroying or close()-ing it
// drops one. Disconnection follows Go/crossbeam: with every Sender gone, receivers drain
// what is queued and then get kClosed; with every Receiver gone, send gets kClosed (in a
// shared channel, kPeerDied instead when a process holding ends of that side died).
//
// A handle is used by one thread at a time; different handles of one channel may be used
// from any threads at once, so clone a handle for each thread. (While a side has a single
// handle, its calls take no lock: see MpmcByteRing.)
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "xchan/channel/channel.hpp"
#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan {

class Sender {
 public:
  Sender() = default;  // a closed handle
  /// Opens a new sender end of `channel` (nullptr gives a closed handle).
  explicit Sender(std::shared_ptr<Channel> channel) noexcept;
  Sender(const Sender& other) noexcept : Sender(other.channel_) {}
  Sender(Sender&& other) noexcept = default;
  Sender& operator=(Sender other) noexcept {
    std::swap(channel_, other.channel_);
    return *this;
  }
  ~Sender() { close(); }

  /// Sends a copy of `payload` if there is room now, taking back room held behind a wrap
  /// if need be (Channel::reclaim_stranded). kFull, kClosed, kTooLarge. Never waits.
  [[nodiscard]] Status try_send(std::span<const std::byte> payload) noexcept {
    return try_send_with(payload.size(), CopyFrom{payload});
  }

  /// Sends, waiting for room until `deadline`. kTimeout, kInterrupted, kClosed, kTooLarge.
  [[nodiscard]] Status send(std::span<const std::byte> payload, Deadline deadline) noexcept {
    return send_with(payload.size(), CopyFrom{payload}, deadline);
  }

  /// Writes a message of up to `n` bytes in place; see Channel::try_send_with.
  template <class Fill>
  [[nodiscard]] Status try_send_with(std::size_t n, Fill&& fill) noexcept {
    if (!channel_) return Status::kClosed;
    const Status s = channel_->try_send_with(n, fill);
    if (s != Status::kFull || !channel_->reclaim_stranded(n)) return s;
    return channel_->try_send_with(n, fill);
  }

  /// Blocking try_send_with: waits for room until `deadline`.
  template <class Fill>
  [[nodiscard]] Status send_with(std::size_t n, Fill&& fill, Deadline deadline) noexcept {
    if (!channel_) return Status::kClosed;
    for (;;) {
      const Status s = channel_->try_send_with(n, fill);
      if (s != Status::kFull) return s;
      const Status w = channel_->wait_writable(n, deadline, channel_->spin_iterations());
      if (w != Status::kOk) return w;
    }
  }

  /// Sends messages in order, waiting for room until `deadline`; `sent` counts how many
  /// went (a prefix). Returns kOk when all went, else why the rest did not.
  [[nodiscard]] Status send_many(std::span<const std::span<const std::byte>> payloads,
                                 Deadline deadline, std::size_t& sent) noexcept;

  /// Drops this end (idempotent). The last sender's close wakes parked receivers.
  void close() noexcept;

  [[nodiscard]] bool is_closed() const noexcept { return !channel_; }
  /// The channel, or nullptr for a closed handle.
  [[nodiscard]] const std::shared_ptr<Channel>& channel() const noexcept { return channel_; }

 private:
  struct CopyFrom {
    std::span<const std::byte> src;
    std::size_t operator()(std::span<std::byte> out) const noexcept {
      core::copy_to_ring(out.data(), src.data(), src.size());
      return src.size();
    }
  };

  std::shared_ptr<Channel> channel_;
};

class Receiver {
 public:
  Receiver() = default;  // a closed handle
  /// Opens a new receiver end of `channel` (nullptr gives a closed handle).
  explicit Receiver(std::shared_ptr<Channel> channel) noexcept;
  Receiver(const Receiver& other) noexcept : Receiver(other.channel_) {}
  Receiver(Receiver&& other) noexcept = default;
  Receiver& operator=(Receiver other) noexcept {
    std::swap(channel_, other.channel_);
    return *this;
  }
  ~Receiver() { close(); }

  /// Takes the oldest message into `out` (replacing its contents). kOk; kEmpty, kClosed
  /// (nothing queued, no sender open); kNoMemory when `out` cannot grow to the message's
  /// size: the message stays queued and `out` keeps its contents; kCorrupted. Never waits.
  [[nodiscard]] Status try_recv(std::vector<std::byte>& out) noexcept {
    return try_recv_with(AssignTo{&out});
  }

  /// Blocking try_recv: waits for a message until `deadline`. kOk, kClosed, kTimeout,
  /// kInterrupted, kCorrupted, and kNoMemory as try_recv (at once: waiting cannot help).
  [[nodiscard]] Status recv(std::vector<std::byte>& out, Deadline deadline) noexcept {
    return recv_with(AssignTo{&out}, deadline);
  }

  /// Drains the oldest message in place; see Channel::try_recv_with.
  template <class Drain>
  [[nodiscard]] Status try_recv_with(Drain&& drain) noexcept {
    if (!channel_) return Status::kClosed;
    return channel_->try_recv_with(std::forward<Drain>(drain));
  }

  /// Blocking try_recv_with.
  template <class Drain>
  [[nodiscard]] Status recv_with(Drain&& drain, Deadline deadline) noexcept {
    std::size_t got = 0;
    return recv_many_with(1, std::forward<Drain>(drain), deadline, got);
  }

  /// Waits until at least one message is queued (or `deadline`), then drains up to `max`
  /// that are ready, under one lock and one wake-up.
  template <class Drain>
  [[nodiscard]] Status recv_many_with(std::size_t max, Drain&& drain, Deadline deadline,
                                      std::size_t& got) noexcept {
    got = 0;
    if (!channel_) return Status::kClosed;
    for (;;) {
      const Status s = channel_->try_recv_many_with(max, drain, got);
      if (s != Status::kEmpty) return s;
      const Status w = channel_->wait_readable(deadline, channel_->spin_iterations());
      if (w != Status::kOk) return w;
    }
  }

  /// Drops this end (idempotent). The last receiver's close wakes parked senders.
  void close() noexcept;

  [[nodiscard]] bool is_closed() const noexcept { return !channel_; }
  [[nodiscard]] const std::shared_ptr<Channel>& channel() const noexcept { return channel_; }

 private:
  // Refuses (false) when `out` cannot grow, so the channel leaves the message queued and
  // reports kNoMemory rather than consume a message nobody got.
  struct AssignTo {
    std::vector<std::byte>* out;
    bool operator()(std::span<const std::byte> in) const noexcept {
      if (in.size() <= out->capacity()) {
        out->assign(in.begin(), in.end());  // no allocation, so no throw
        return true;
      }
      try {
        std::vector<std::byte> grown(in.begin(), in.end());  // `out` untouched if this throws
        out->swap(grown);
      } catch (...) {  // bad_alloc (length_error cannot happen: a message is < 2^31 bytes)
        return false;
      }
      return true;
    }
  };

  std::shared_ptr<Channel> channel_;
};

/// Creates a channel and its first pair of ends. kInvalidArgument, kNoMemory.
[[nodiscard]] Status make_channel(const ChannelConfig& config, Sender& sender, Receiver& receiver);

}  // namespace xchan
