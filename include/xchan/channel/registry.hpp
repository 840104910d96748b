// The process-wide map from channel id to channel: the one piece of global state, used to
// re-attach an end that crossed an interpreter boundary as a plain integer. Holds weak
// references only, so it never keeps a channel alive, and no Python objects.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace xchan {

class Channel;

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

 private:
  ChannelRegistry() = default;

  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Channel>> channels_;
  std::uint64_t next_id_ = 1;
};

}  // namespace xchan
