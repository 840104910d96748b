// The process-wide map from channel id to channel: the one piece of global state, used to
// re-attach an end that crossed an interpreter boundary as a plain integer. Channels are
// held by weak reference, so the map never keeps one alive; the exception is an end "in
// transit" (pickled, not yet unpickled), which is parked here under a token and still
// counts as an open end until it is taken back. No Python objects.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <variant>

#include "xchan/channel/ends.hpp"

namespace xchan {

class ChannelRegistry {
 public:
  /// The registry of this process. Any thread.
  [[nodiscard]] static ChannelRegistry& instance() noexcept;

  /// Registers a live channel and returns its new id (never 0, never reused in this
  /// process). Any thread; takes a mutex. Throws std::bad_alloc.
  [[nodiscard]] std::uint64_t add(const std::shared_ptr<Channel>& channel);

  /// The channel with that id if it is still alive, else nullptr. Any thread.
  [[nodiscard]] std::shared_ptr<Channel> find(std::uint64_t id) const;

  /// Forgets an id (called by the channel's destructor). Any thread.
  void remove(std::uint64_t id) noexcept;

  /// Registered ids (for tests and statistics). Any thread.
  [[nodiscard]] std::size_t size() const;

  using End = std::variant<Sender, Receiver>;

  /// Parks an end in transit and returns its token (never 0). Throws std::bad_alloc.
  [[nodiscard]] std::uint64_t park(End end);

  /// Takes a parked end back; false if the token is unknown (already taken).
  [[nodiscard]] bool take(std::uint64_t token, End& out);

  /// Ends parked now (for tests). Any thread.
  [[nodiscard]] std::size_t parked() const;

 private:
  ChannelRegistry() = default;

  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Channel>> channels_;
  std::unordered_map<std::uint64_t, End> parked_;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_token_ = 0;
};

}  // namespace xchan
