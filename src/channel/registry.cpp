// ChannelRegistry: a mutex-guarded map; lookups happen when ends cross interpreters, never
// on the message path. Ends leave the map before they are closed, and are closed outside
// the lock: closing the last end destroys the channel, whose destructor calls remove().
#include "xchan/channel/registry.hpp"

#include <pthread.h>
#include <sys/random.h>

#include <cerrno>
#include <random>
#include <stdexcept>
#include <vector>

namespace xchan {
namespace {

ParkToken random_token() {
  std::uint64_t words[2] = {0, 0};
  auto* p = reinterpret_cast<char*>(words);
  std::size_t got = 0;
  while (got < sizeof words) {
    const ssize_t n = getrandom(p + got, sizeof words - got, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;  // no getrandom(2) here: the C++ library's source of randomness instead
    }
  }
  if (got < sizeof words) {
    std::random_device device;
    for (std::uint64_t& w : words) w = (std::uint64_t{device()} << 32) ^ device();
  }
  return {words[0], words[1]};
}

// A fork while another thread holds the registry's mutex would leave it locked for good
// in the child: hold it across the fork, as pthread_atfork(3) suggests.
void before_fork() noexcept { ChannelRegistry::instance().lock_for_fork(); }
void after_fork() noexcept { ChannelRegistry::instance().unlock_after_fork(); }

}  // namespace

ChannelRegistry& ChannelRegistry::instance() noexcept {
  // Never destroyed: channels may outlive static destruction order (interpreter exit).
  static auto* registry = [] {
    auto* r = new ChannelRegistry();
    (void)pthread_atfork(before_fork, after_fork, after_fork);
    return r;
  }();
  return *registry;
}

std::uint64_t ChannelRegistry::add(const std::shared_ptr<Channel>& channel) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t id = next_id_++;
  channels_.emplace(id, Entry{channel, false});
  return id;
}

std::shared_ptr<Channel> ChannelRegistry::find(std::uint64_t id) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second.channel.lock();
}

void ChannelRegistry::allow_attach_by_id(std::uint64_t id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = channels_.find(id);
  if (it != channels_.end()) it->second.attach_by_id = true;
}

std::shared_ptr<Channel> ChannelRegistry::find_attachable(std::uint64_t id) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto it = channels_.find(id);
  return it == channels_.end() || !it->second.attach_by_id ? nullptr : it->second.channel.lock();
}

void ChannelRegistry::remove(std::uint64_t id) noexcept {
  const std::lock_guard<std::mutex> lock(mutex_);
  channels_.erase(id);
}

std::size_t ChannelRegistry::size() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return channels_.size();
}

ParkToken ChannelRegistry::park(End end, std::uint64_t owner) {
  const ParkToken token = random_token();
  const std::lock_guard<std::mutex> lock(mutex_);
  // 2^-128 per pair; a clash would hand one transfer's end to another, so refuse it.
  if (parked_.contains(token)) throw std::runtime_error("xchan: park token collision");
  parked_.emplace(token, Parked{std::move(end), owner});
  return token;
}

ChannelRegistry::TakeResult ChannelRegistry::take(const ParkToken& token, bool is_sender, std::uint64_t channel_id,
                                                  End& out) {
  End taken;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = parked_.find(token);
    if (it == parked_.end()) return TakeResult::kUnknown;
    const End& end = it->second.end;
    const bool sender = std::holds_alternative<Sender>(end);
    const std::shared_ptr<Channel>& ch =
        sender ? std::get<Sender>(end).channel() : std::get<Receiver>(end).channel();
    if (sender != is_sender || !ch || ch->id() != channel_id) return TakeResult::kMismatch;
    taken = std::move(it->second.end);
    parked_.erase(it);
  }
  out = std::move(taken);  // whatever `out` held closes outside the lock
  return TakeResult::kTaken;
}

bool ChannelRegistry::drop(const ParkToken& token) noexcept {
  End dropped;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = parked_.find(token);
    if (it == parked_.end()) return false;
    dropped = std::move(it->second.end);
    parked_.erase(it);
  }
  return true;  // `dropped` closes here, outside the lock
}

std::size_t ChannelRegistry::drop_parked_by(std::uint64_t owner) {
  std::vector<End> dropped;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second.owner == owner) {
        dropped.push_back(std::move(it->second.end));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return dropped.size();  // closed here, outside the lock
}

std::size_t ChannelRegistry::parked() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return parked_.size();
}

void ChannelRegistry::lock_for_fork() noexcept { mutex_.lock(); }
void ChannelRegistry::unlock_after_fork() noexcept { mutex_.unlock(); }

}  // namespace xchan
