// Channels in a shared segment, used by processes made with fork(): each child attaches
// through the segment's descriptor and opens ends of its own, which count in the segment.
#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "xchan/channel/channel.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan {
namespace {

using namespace std::chrono_literals;

constexpr auto kDetectionBound = 1500ms;  // the contract: survivors know within 1.5 s

std::shared_ptr<Channel> make_shared_channel(std::uint64_t capacity, std::uint64_t max_bytes,
                                             std::uint32_t spin = 4096) {
  ChannelConfig config;
  config.capacity = capacity;
  config.max_bytes = max_bytes;
  config.spin_iterations = spin;
  config.shared = true;
  Status s = Status::kOk;
  std::shared_ptr<Channel> ch = Channel::create(config, s);
  EXPECT_EQ(s, Status::kOk);
  return ch;
}

/// Runs `body` in a forked child, which exits with status 0 if it returns true (1 if not)
/// and is ended by SIGALRM if it hangs. Returns the child's pid.
pid_t run_child(const std::function<bool()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);
    _exit(body() ? 0 : 1);
  }
  return pid;
}

void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

/// Waits for a child that kills itself with SIGKILL inside a call (holding a lock, say).
void expect_killed_itself(pid_t pid) {
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

void expect_child_succeeded(pid_t pid, const std::string& what) {
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << what << ": exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ", signal "
      << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/// A one-byte-per-child pipe the parent reads to know that every child has opened its ends.
struct Barrier {
  int fds[2] = {-1, -1};
  Barrier() { EXPECT_EQ(pipe(fds), 0); }
  ~Barrier() {
    close(fds[0]);
    close(fds[1]);
  }
  void arrive() const { EXPECT_EQ(write(fds[1], "x", 1), 1); }
  void wait_for(int n) const {
    char c = 0;
    for (int i = 0; i < n; ++i) ASSERT_EQ(read(fds[0], &c, 1), 1);
  }
};

std::byte pattern(std::uint64_t message, std::size_t at) noexcept {
  return static_cast<std::byte>((message * 131 + at * 7) & 0xff);
}

TEST(SharedChannelTest, TheSegmentIsAnUnnamedMemfdOfMode0600WithItsSpaceReserved) {
  const auto ch = make_shared_channel(16, 1 << 16);
  ASSERT_TRUE(ch);
  const int fd = ch->shared_fd();
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, static_cast<std::uint64_t>(st.st_size));  // allocated
  char link[256] = {};
  ASSERT_GT(readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link).rfind("/memfd:xchan-channel", 0), 0U) << link;  // no file in /dev/shm
  Status s = Status::kOk;
  ChannelConfig private_config;
  EXPECT_EQ(Channel::create(private_config, s)->shared_fd(), -1);
}

TEST(SharedChannelTest, AChildSendsEverySizeUpToTheLimitAndTheParentGetsEachOnceInOrder) {
  const auto ch = make_shared_channel(64, 1 << 16);
  ASSERT_TRUE(ch);
  const std::size_t max = ch->max_message();
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 64; ++n) sizes.push_back(n);
  for (std::size_t n = 65; n < max; n = n * 5 / 4 + 3) sizes.push_back(n);
  sizes.push_back(max - 1);
  sizes.push_back(max);
  const std::size_t rounds = 20;
  Receiver rx(ch);
  Sender keeps_it_open(ch);  // until the child's own sender counts
  Barrier attached;
  const int fd = ch->shared_fd();
  const pid_t pid = run_child([&] {
    keeps_it_open.close();  // the child's copies of the parent's ends (fork duplicates them)
    rx.close();
    Status s = Status::kOk;
    const auto mine = Channel::attach(fd, s);
    if (!mine) return false;
    Sender tx(mine);
    attached.arrive();
    std::vector<std::byte> buf(max);
    for (std::size_t r = 0, i = 0; r < rounds; ++r) {
      for (const std::size_t n : sizes) {
        for (std::size_t j = 0; j < n; ++j) buf[j] = pattern(i, j);
        if (tx.send(std::span(buf.data(), n), Deadline::after(30s)) != Status::kOk) return false;
        ++i;
      }
    }
    return true;  // the sender closes as the child exits
  });
  attached.wait_for(1);
  keeps_it_open.close();
  std::vector<std::byte> out;
  std::size_t i = 0;
  for (std::size_t r = 0; r < rounds; ++r) {
    for (const std::size_t n : sizes) {
      ASSERT_EQ(rx.recv(out, Deadline::after(30s)), Status::kOk) << "message " << i;
      ASSERT_EQ(out.size(), n) << "message " << i;
      for (std::size_t j = 0; j < n; ++j) ASSERT_EQ(out[j], pattern(i, j)) << "message " << i << " byte " << j;
      ++i;
    }
  }
  EXPECT_EQ(rx.recv(out, Deadline::after(30s)), Status::kClosed);  // the child's sender closed
  expect_child_succeeded(pid, "sender");
}

TEST(SharedChannelTest, AReceiverParkedInOneProcessIsWokenBySendsFromAnother) {
  const auto ch = make_shared_channel(4, 4096, /*spin=*/0);  // parks at once
  ASSERT_TRUE(ch);
  Sender tx(ch);
  const int fd = ch->shared_fd();
  const pid_t pid = run_child([fd] {
    Status s = Status::kOk;
    const auto mine = Channel::attach(fd, s);
    if (!mine) return false;
    Receiver rx(mine);
    std::vector<std::byte> out;
    for (int i = 0; i < 20; ++i) {
      if (rx.recv(out, Deadline::after(30s)) != Status::kOk || out.size() != 1 ||
          out[0] != static_cast<std::byte>(i)) {
        return false;
      }
    }
    return true;
  });
  for (int i = 0; i < 20; ++i) {
    // Give the child time to park before each send: the wake-up crosses processes.
    for (int w = 0; w < 200 && ch->stats().parked_receivers == 0; ++w) std::this_thread::sleep_for(1ms);
    const std::byte b = static_cast<std::byte>(i);
    ASSERT_EQ(tx.send(std::span(&b, 1), Deadline::after(30s)), Status::kOk);
  }
  expect_child_succeeded(pid, "receiver");
}

TEST(SharedChannelTest, ManyProducerAndConsumerProcessesDeliverEachMessageOnceInProducerOrder) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 3;
  constexpr std::uint32_t kPerProducer = 20000;
  const auto ch = make_shared_channel(256, 1 << 14);
  ASSERT_TRUE(ch);
  // One counter per message, in memory every process shares: a duplicate shows as 2.
  const std::size_t counters_bytes = sizeof(std::uint32_t) * kProducers * kPerProducer;
  void* mem = mmap(nullptr, counters_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* counters = static_cast<std::uint32_t*>(mem);
  Sender keep_tx(ch);
  Receiver keep_rx(ch);
  Barrier attached;
  const int fd = ch->shared_fd();
  std::vector<pid_t> pids;
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(run_child([&, p] {
      keep_tx.close();  // the child's copies of the parent's ends
      keep_rx.close();
      Status s = Status::kOk;
      const auto mine = Channel::attach(fd, s);
      if (!mine) return false;
      Sender tx(mine);
      attached.arrive();
      for (std::uint32_t seq = 0; seq < kPerProducer; ++seq) {
        const std::uint32_t record[2] = {static_cast<std::uint32_t>(p), seq};
        if (tx.send(std::as_bytes(std::span(record)), Deadline::after(60s)) != Status::kOk) return false;
      }
      return true;
    }));
  }
  for (int c = 0; c < kConsumers; ++c) {
    pids.push_back(run_child([&] {
      keep_tx.close();
      keep_rx.close();
      Status s = Status::kOk;
      const auto mine = Channel::attach(fd, s);
      if (!mine) return false;
      Receiver rx(mine);
      attached.arrive();
      std::vector<std::int64_t> last(kProducers, -1);
      std::vector<std::byte> out;
      for (;;) {
        const Status r = rx.recv(out, Deadline::after(60s));
        if (r == Status::kClosed) return true;  // every producer is done and it is drained
        if (r != Status::kOk || out.size() != 8) return false;
        std::uint32_t record[2];
        std::memcpy(record, out.data(), sizeof record);
        if (record[0] >= kProducers || record[1] >= kPerProducer) return false;
        if (static_cast<std::int64_t>(record[1]) <= last[record[0]]) return false;  // out of order
        last[record[0]] = record[1];
        std::atomic_ref<std::uint32_t>(counters[record[0] * kPerProducer + record[1]]).fetch_add(1);
      }
    }));
  }
  attached.wait_for(kProducers + kConsumers);
  keep_tx.close();  // now only the producers keep the channel open
  keep_rx.close();
  for (const pid_t pid : pids) expect_child_succeeded(pid, "producer or consumer");
  std::size_t missing = 0;
  std::size_t duplicated = 0;
  for (std::size_t i = 0; i < std::size_t{kProducers} * kPerProducer; ++i) {
    missing += counters[i] == 0 ? 1 : 0;
    duplicated += counters[i] > 1 ? 1 : 0;
  }
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(duplicated, 0U);
  munmap(mem, counters_bytes);
}

TEST(SharedChannelTest, ForkDuplicatesEndsAsItDuplicatesDescriptors) {
  // The child's copies of the parent's ends count from the fork on: the parent closing
  // its sender at once does not close the channel under the child.
  const auto ch = make_shared_channel(64, 1 << 14);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  const pid_t pid = run_child([&] {
    rx.close();
    for (std::uint32_t i = 0; i < 1000; ++i) {
      if (tx.send(std::as_bytes(std::span(&i, 1)), Deadline::after(30s)) != Status::kOk) return false;
    }
    tx.close();
    return true;
  });
  tx.close();  // right away: the child's copy keeps the channel open
  std::vector<std::byte> out;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(rx.recv(out, Deadline::after(30s)), Status::kOk);
    std::uint32_t got = 0;
    std::memcpy(&got, out.data(), sizeof got);
    ASSERT_EQ(got, i);
  }
  EXPECT_EQ(rx.recv(out, Deadline::after(30s)), Status::kClosed);  // it closed its copy
  expect_child_succeeded(pid, "forked sender");
}

TEST(SharedChannelTest, AChildThatExecsAnotherProgramNoLongerHoldsItsCopies) {
  // It keeps its pid and start time, but the close-on-exec descriptor of the segment is
  // gone with the old program: its copies of the ends count no more.
  const auto ch = make_shared_channel(4, 4096);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  tx.close();
  const auto closed = std::chrono::steady_clock::now();
  std::vector<std::byte> out;
  EXPECT_EQ(rx.recv(out, Deadline::after(10s)), Status::kPeerDied);  // it left without closing them
  EXPECT_LT(std::chrono::steady_clock::now() - closed, kDetectionBound);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

TEST(SharedChannelTest, ThePeerTableHoldsSixtyFourAttachmentsAndAFullTableReclaimsTheDead) {
  const auto ch = make_shared_channel(4, 4096);  // its creator holds one slot
  ASSERT_TRUE(ch);
  const int fd = ch->shared_fd();
  std::vector<std::shared_ptr<Channel>> held;
  Status s = Status::kOk;
  for (std::uint32_t i = 1; i < kMaxPeers; ++i) {
    held.push_back(Channel::attach(fd, s));
    ASSERT_TRUE(held.back()) << i;
  }
  EXPECT_FALSE(Channel::attach(fd, s));
  EXPECT_EQ(s, Status::kNoMemory);
  held.pop_back();  // one slot back
  EXPECT_TRUE(Channel::attach(fd, s));
  held.clear();
  // A child fills the table and dies: the next attach reclaims its slots.
  Barrier full;
  const pid_t pid = run_child([&] {
    std::vector<std::shared_ptr<Channel>> mine;
    Status st = Status::kOk;
    while (auto c = Channel::attach(fd, st)) mine.push_back(std::move(c));
    full.arrive();
    pause();
    return true;
  });
  full.wait_for(1);
  EXPECT_FALSE(Channel::attach(fd, s));
  kill_and_reap(pid);
  EXPECT_TRUE(Channel::attach(fd, s));
}

TEST(SharedChannelTest, AttachRefusesWhatIsNotAValidSegment) {
  Status s = Status::kOk;
  EXPECT_FALSE(Channel::attach(-1, s));
  EXPECT_EQ(s, Status::kInvalidArgument);
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  EXPECT_FALSE(Channel::attach(null_fd, s));
  EXPECT_EQ(s, Status::kInvalidArgument);
  close(null_fd);
  const int zeros = memfd_create("zeros", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(zeros, 1 << 16), 0);
  EXPECT_FALSE(Channel::attach(zeros, s));
  EXPECT_EQ(s, Status::kCorrupted);
  close(zeros);
}

TEST(SharedChannelTest, AScribbledHeaderOrRingIndexIsDetectedAtAttach) {
  const auto ch = make_shared_channel(16, 1 << 16);
  ASSERT_TRUE(ch);
  const int fd = ch->shared_fd();
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);  // another view
  ASSERT_NE(mem, MAP_FAILED);
  auto* bytes = static_cast<unsigned char*>(mem);
  const std::size_t ring = offsetof(ChannelHeader, ring) + offsetof(core::MpmcRingHeader, ring);
  const std::pair<const char*, std::size_t> fields[] = {
      {"magic", offsetof(ChannelHeader, magic)},
      {"version", offsetof(ChannelHeader, version)},
      {"data_offset", offsetof(ChannelHeader, data_offset)},
      {"data_bytes", offsetof(ChannelHeader, data_bytes)},
      {"fencing", offsetof(ChannelHeader, fencing)},
      {"ring magic", ring + offsetof(core::RingHeader, magic)},
      {"ring data_bytes", ring + offsetof(core::RingHeader, data_bytes)},
      {"ring head", ring + offsetof(core::RingHeader, head)},
  };
  for (const auto& [name, at] : fields) {
    unsigned char saved[8];
    std::memcpy(saved, bytes + at, 8);
    bytes[at] ^= 0x5a;
    bytes[at + 3] ^= 0xa5;
    Status s = Status::kOk;
    EXPECT_FALSE(Channel::attach(fd, s)) << name;
    EXPECT_EQ(s, Status::kCorrupted) << name;
    std::memcpy(bytes + at, saved, 8);
  }
  Status s = Status::kOk;
  EXPECT_TRUE(Channel::attach(fd, s)) << "restored";
  munmap(mem, 4096);
}

// ---- processes that die --------------------------------------------------------------

/// Opens an end of `kind` in a forked child (attached through `fd`), tells the parent,
/// then runs `body` with it.
template <class End, class Body>
pid_t child_with_end(int fd, const Barrier& attached, Body body) {
  return run_child([fd, &attached, body] {
    Status s = Status::kOk;
    const auto mine = Channel::attach(fd, s);
    if (!mine) return false;
    End end(mine);
    attached.arrive();
    return body(end);
  });
}

TEST(SharedChannelTest, ASenderKilledMidStreamIsReportedAfterEverythingItSentIsReceived) {
  const auto ch = make_shared_channel(64, 1 << 14);
  ASSERT_TRUE(ch);
  Receiver rx(ch);
  Sender keep(ch);
  Barrier attached;
  const pid_t pid = child_with_end<Sender>(ch->shared_fd(), attached, [](Sender& tx) {
    for (std::uint64_t seq = 0;; ++seq) {
      if (tx.send(std::as_bytes(std::span(&seq, 1)), Deadline::after(60s)) != Status::kOk) return false;
    }
  });
  attached.wait_for(1);
  keep.close();
  std::vector<std::byte> out;
  std::uint64_t expected = 0;
  for (; expected < 5000; ++expected) {
    ASSERT_EQ(rx.recv(out, Deadline::after(30s)), Status::kOk);
    std::uint64_t got = 0;
    std::memcpy(&got, out.data(), sizeof got);
    ASSERT_EQ(got, expected);
  }
  kill(pid, SIGKILL);  // not reaped yet: a zombie is dead too
  const auto killed = std::chrono::steady_clock::now();
  Status s = Status::kOk;
  while ((s = rx.recv(out, Deadline::after(10s))) == Status::kOk) {
    std::uint64_t got = 0;
    ASSERT_EQ(out.size(), sizeof got);
    std::memcpy(&got, out.data(), sizeof got);
    ASSERT_EQ(got, expected++);  // what it had sent drains first, in order
  }
  EXPECT_EQ(s, Status::kPeerDied);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, kDetectionBound);
  EXPECT_EQ(ch->stats().senders, 0U);
  kill_and_reap(pid);
}

TEST(SharedChannelTest, AReceiverKilledWhileASenderWaitsForRoomIsReported) {
  const auto ch = make_shared_channel(4, 4096);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver keep(ch);
  Barrier attached;
  const pid_t pid = child_with_end<Receiver>(ch->shared_fd(), attached, [](Receiver&) {
    pause();  // holds its receiver and takes nothing
    return true;
  });
  attached.wait_for(1);
  keep.close();
  const std::byte b{7};
  while (tx.try_send(std::span(&b, 1)) == Status::kOk) {
  }
  kill(pid, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(tx.send(std::span(&b, 1), Deadline::after(10s)), Status::kPeerDied);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, kDetectionBound);
  kill_and_reap(pid);
}

TEST(SharedChannelTest, ALockHeldByAProcessThatDiedIsRecoveredAndItsHalfWrittenRecordNeverArrives) {
  const auto ch = make_shared_channel(16, 1 << 14);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  Barrier attached;
  const pid_t pid = child_with_end<Sender>(ch->shared_fd(), attached, [](Sender& mine) {
    const Status s = mine.try_send_with(1000, [](std::span<std::byte> out) {
      std::memset(out.data(), 0xEE, 500);  // half of it, then the process dies
      kill(getpid(), SIGKILL);
      return out.size();
    });
    return s == Status::kOk;  // never reached
  });
  attached.wait_for(1);
  expect_killed_itself(pid);  // inside the send, the producer lock held
  const auto died = std::chrono::steady_clock::now();
  const std::byte b{1};
  EXPECT_EQ(tx.send(std::span(&b, 1), Deadline::after(10s)), Status::kOk);
  EXPECT_LT(std::chrono::steady_clock::now() - died, kDetectionBound);
  std::vector<std::byte> out;
  ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_EQ(out, std::vector<std::byte>{b});  // the dead sender's record was never published
  EXPECT_EQ(rx.try_recv(out), Status::kEmpty);
}

TEST(SharedChannelTest, AProducerThatDiesMidBatchLeavesItsSealedRecordsAndASurvivorWritesAfterThem) {
  // The dead producer sealed record 1 of a batch and died inside record 2, before the
  // batch published `tail`: a surviving producer must write after record 1, not over it.
  const auto ch = make_shared_channel(16, 1 << 14);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  Barrier attached;
  const pid_t pid = child_with_end<Sender>(ch->shared_fd(), attached, [](Sender& mine) {
    std::size_t sent = 0;
    const Status s = mine.channel()->try_send_many_with(
        2, [](std::size_t) { return std::size_t{100}; },
        [](std::size_t i, std::span<std::byte> out) {
          std::memset(out.data(), 0xA0 + static_cast<int>(i), out.size());
          if (i == 1) kill(getpid(), SIGKILL);  // inside the second record
          return out.size();
        },
        sent);
    return s == Status::kOk;  // never reached
  });
  attached.wait_for(1);
  expect_killed_itself(pid);
  const std::vector<std::byte> survivor(50, std::byte{0x5A});
  ASSERT_EQ(tx.send(survivor, Deadline::after(10s)), Status::kOk);
  std::vector<std::byte> out;
  ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_EQ(out, std::vector<std::byte>(100, std::byte{0xA0}));  // the sealed record, whole
  ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_EQ(out, survivor);
  EXPECT_EQ(rx.try_recv(out), Status::kEmpty);  // the half-written record never arrives
  EXPECT_EQ(ch->stats().queued, 0U);
}

TEST(SharedChannelTest, ASideClosedForGoodIsNotReopenedByAnEndMadeLater) {
  const auto ch = make_shared_channel(4, 4096);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  tx.close();
  std::vector<std::byte> out;
  EXPECT_EQ(rx.try_recv(out), Status::kClosed);
  Status s = Status::kOk;
  const auto again = Channel::attach(ch->shared_fd(), s);
  ASSERT_TRUE(again);
  Sender late(again);
  EXPECT_FALSE(late.channel());  // born closed
  EXPECT_EQ(late.try_send(std::as_bytes(std::span("x", 1))), Status::kClosed);
  EXPECT_EQ(rx.try_recv(out), Status::kClosed);
}

TEST(SharedChannelTest, TwoProcessesThatDiedHoldingBothSideLocksAreBothRecovered) {
  // One died holding the producer lock, the other holding the consumer lock: recovering
  // the first takes both sides for its repair and meets the second's lock on the way.
  const auto ch = make_shared_channel(16, 1 << 14);
  ASSERT_TRUE(ch);
  Sender tx(ch);
  Receiver rx(ch);
  const std::byte first{1};
  ASSERT_EQ(tx.try_send(std::span(&first, 1)), Status::kOk);
  Barrier attached;
  const pid_t reader = child_with_end<Receiver>(ch->shared_fd(), attached, [](Receiver& mine) {
    const Status s = mine.try_recv_with([](std::span<const std::byte>) { kill(getpid(), SIGKILL); });
    return s == Status::kOk;  // never reached
  });
  expect_killed_itself(reader);
  const pid_t writer = child_with_end<Sender>(ch->shared_fd(), attached, [](Sender& mine) {
    const Status s = mine.try_send_with(10, [](std::span<std::byte> out) {
      kill(getpid(), SIGKILL);
      return out.size();
    });
    return s == Status::kOk;
  });
  expect_killed_itself(writer);
  const auto died = std::chrono::steady_clock::now();
  const std::byte second{2};
  EXPECT_EQ(tx.send(std::span(&second, 1), Deadline::after(10s)), Status::kOk);
  EXPECT_LT(std::chrono::steady_clock::now() - died, kDetectionBound);
  std::vector<std::byte> out;
  ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_EQ(out, std::vector<std::byte>{first});  // the dead reader never released it
  ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_EQ(out, std::vector<std::byte>{second});
}

TEST(SharedChannelTest, AStoppedProcessIsNotDeclaredDead) {
  const auto ch = make_shared_channel(4, 4096);
  ASSERT_TRUE(ch);
  Receiver rx(ch);
  Sender keep(ch);
  Barrier attached;
  Barrier go;
  const pid_t pid = child_with_end<Sender>(ch->shared_fd(), attached, [&go, &rx, &keep](Sender& tx) {
    rx.close();  // the child's copies of the parent's ends
    keep.close();
    char c = 0;
    if (read(go.fds[0], &c, 1) != 1) return false;
    const std::byte b{42};
    return tx.send(std::span(&b, 1), Deadline::after(30s)) == Status::kOk;
  });
  attached.wait_for(1);
  keep.close();
  kill(pid, SIGSTOP);
  std::vector<std::byte> out;
  EXPECT_EQ(rx.recv(out, Deadline::after(kDetectionBound + 500ms)), Status::kTimeout);  // not kPeerDied
  EXPECT_GE(ch->stats().senders, 1U);  // its ends still count (its inherited copies may too)
  kill(pid, SIGCONT);
  go.arrive();
  ASSERT_EQ(rx.recv(out, Deadline::after(30s)), Status::kOk);
  EXPECT_EQ(out, std::vector<std::byte>{std::byte{42}});
  EXPECT_EQ(rx.recv(out, Deadline::after(30s)), Status::kClosed);  // it exited: closed, not died
  expect_child_succeeded(pid, "stopped sender");
}

TEST(SharedChannelTest, ANonBlockingReceiverAlsoLearnsThatItsSenderDied) {
  const auto ch = make_shared_channel(4, 4096);
  ASSERT_TRUE(ch);
  Receiver rx(ch);
  Sender keep(ch);
  Barrier attached;
  const pid_t pid = child_with_end<Sender>(ch->shared_fd(), attached, [](Sender&) {
    pause();
    return true;
  });
  attached.wait_for(1);
  keep.close();
  kill_and_reap(pid);
  const auto killed = std::chrono::steady_clock::now();
  std::vector<std::byte> out;
  Status s = Status::kEmpty;
  while ((s = rx.try_recv(out)) == Status::kEmpty && std::chrono::steady_clock::now() - killed < 5s) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(s, Status::kPeerDied);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, kDetectionBound);
}

}  // namespace
}  // namespace xchan
