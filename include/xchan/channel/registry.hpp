// The process-wide map from channel id to channel: the one piece of global state, used to
// re-attach an end that crossed an interpreter boundary. Channels are held by weak
// reference, so the map never keeps one alive; the exception is an end "in transit"
// (pickled, not yet unpickled), which is parked here under a random token and still counts
// as an open end until it is taken back, or until its owner (the interpreter that pickled
// it) drops what it parked. No Python objects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <variant>

#include "xchan/channel/ends.hpp"

namespace xchan {

/// Names a parked end: 128 random bits, so that a token cannot be guessed or made up from
/// another one, and so that stale or edited bytes find nothing.
struct ParkToken {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  friend bool operator==(const ParkToken&, const ParkToken&) = default;
};

class ChannelRegistry {
 public:
  /// The registry of this process. Any thread.
  [[nodiscard]] static ChannelRegistry& instance() noexcept;

  /// Registers a live channel and returns its new id (never 0, never reused in this
  /// process). Any thread; takes a mutex. Throws std::bad_alloc.
  [[nodiscard]] std::uint64_t add(const std::shared_ptr<Channel>& channel);

  /// The channel with that id if it is still alive, else nullptr. Any thread.
  [[nodiscard]] std::shared_ptr<Channel> find(std::uint64_t id) const;

  /// Lets find_attachable() open new ends of channel `id` by its id alone (a queue whose
  /// every copy holds both ends; plain channels travel only as parked ends). Any thread.
  void allow_attach_by_id(std::uint64_t id);

  /// find(), for a channel that allow_attach_by_id() admitted; else nullptr. Any thread.
  [[nodiscard]] std::shared_ptr<Channel> find_attachable(std::uint64_t id) const;

  /// Forgets an id (called by the channel's destructor). Any thread.
  void remove(std::uint64_t id) noexcept;

  /// Registered ids (for tests and statistics). Any thread.
  [[nodiscard]] std::size_t size() const;

  using End = std::variant<Sender, Receiver>;

  /// Parks an end in transit on behalf of `owner` (an id the caller chooses: the Python
  /// bindings use the pickling interpreter's) and returns its fresh random token. Throws
  /// std::bad_alloc. Any thread.
  [[nodiscard]] ParkToken park(End end, std::uint64_t owner);

  enum class TakeResult : std::uint8_t {
    kTaken,     // `out` holds the end; the token is spent
    kUnknown,   // no such token: already taken, dropped by its owner, or never issued
    kMismatch,  // the token names an end of another kind or channel: left parked
  };

  /// Takes a parked end back, at most once, if it is of the kind `is_sender` says and
  /// belongs to channel `channel_id`. Any thread.
  [[nodiscard]] TakeResult take(const ParkToken& token, bool is_sender, std::uint64_t channel_id, End& out);

  /// Closes the end parked under `token` if nobody took it (the message that carried it
  /// was never sent, say). Returns whether it was still parked. Any thread; the end is
  /// closed outside the registry's lock.
  bool drop(const ParkToken& token) noexcept;

  /// Closes every end `owner` parked and nobody took (the owner is going away). Returns
  /// how many. Any thread; the ends are closed outside the registry's lock.
  std::size_t drop_parked_by(std::uint64_t owner);

  /// Ends parked now (for tests). Any thread.
  [[nodiscard]] std::size_t parked() const;

  /// pthread_atfork handlers: hold the lock across a fork so that no child starts with it
  /// held by a thread that does not exist there. Not for other callers.
  void lock_for_fork() noexcept;
  void unlock_after_fork() noexcept;

 private:
  ChannelRegistry() = default;

  struct Entry {
    std::weak_ptr<Channel> channel;
    bool attach_by_id = false;
  };
  struct Parked {
    End end;
    std::uint64_t owner = 0;
  };
  struct TokenHash {
    std::size_t operator()(const ParkToken& t) const noexcept { return std::hash<std::uint64_t>{}(t.hi ^ t.lo); }
  };

  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, Entry> channels_;
  std::unordered_map<ParkToken, Parked, TokenHash> parked_;
  std::uint64_t next_id_ = 1;
};

}  // namespace xchan
