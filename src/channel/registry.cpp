// ChannelRegistry: a mutex-guarded map; lookups happen when ends cross interpreters, never
// on the message path.
#include "xchan/channel/registry.hpp"

namespace xchan {

ChannelRegistry& ChannelRegistry::instance() noexcept {
  // Never destroyed: channels may outlive static destruction order (interpreter exit).
  static auto* registry = new ChannelRegistry();
  return *registry;
}

std::uint64_t ChannelRegistry::add(const std::shared_ptr<Channel>& channel) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t id = next_id_++;
  channels_.emplace(id, channel);
  return id;
}

std::shared_ptr<Channel> ChannelRegistry::find(std::uint64_t id) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second.lock();
}

void ChannelRegistry::remove(std::uint64_t id) noexcept {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.erase(id);
}

std::size_t ChannelRegistry::size() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return channels_.size();
}

std::uint64_t ChannelRegistry::park(End end) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t token = ++next_token_;  // unique and never 0 in this process
  parked_.emplace(token, std::move(end));
  return token;
}

bool ChannelRegistry::take(std::uint64_t token, End& out) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = parked_.find(token);
  if (it == parked_.end()) return false;
  out = std::move(it->second);
  parked_.erase(it);
  return true;
}

std::size_t ChannelRegistry::parked() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return parked_.size();
}

}  // namespace xchan
