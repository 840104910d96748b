// Processes killed with SIGKILL at random points while they use a shared channel: the
// survivors learn it within 1.5 s, nothing arrives twice or torn, nothing a survivor could
// have received is lost, and nobody waits forever (each child is ended by SIGALRM if it
// hangs, which fails the run).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"
#include "xchan/channel/channel.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan {
namespace {

using namespace std::chrono_literals;

constexpr auto kDetectionBound = 1500ms;

std::shared_ptr<Channel> make_shared_channel(std::uint64_t capacity) {
  ChannelConfig config;
  config.capacity = capacity;
  config.max_bytes = 1 << 14;
  config.shared = true;
  Status s = Status::kOk;
  auto ch = Channel::create(config, s);
  EXPECT_EQ(s, Status::kOk);
  return ch;
}

/// Message `seq`: 8 bytes of seq, then 0..1000 bytes of a pattern seeded by it.
std::vector<std::byte> message(std::uint64_t seq) {
  std::vector<std::byte> m(8 + (seq * 37) % 1001);
  std::memcpy(m.data(), &seq, 8);
  test::fill_pattern(std::span(m).subspan(8), seq);
  return m;
}

bool intact(const std::vector<std::byte>& m, std::uint64_t& seq) {
  if (m.size() < 8) return false;
  std::memcpy(&seq, m.data(), 8);
  return m.size() == 8 + (seq * 37) % 1001 && test::matches_pattern(std::span(m).subspan(8), seq);
}

void ready_pipe_wait(int fd, int n) {
  char c = 0;
  for (int i = 0; i < n; ++i) ASSERT_EQ(read(fd, &c, 1), 1);
}

TEST(SharedKillStressTest, AProducerKilledAtRandomPoints) {
  std::mt19937_64 rng(12345);
  for (int run = 0; run < 50; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    const auto ch = make_shared_channel(1 + rng() % 64);
    ASSERT_TRUE(ch);
    Receiver rx(ch);
    Sender keep(ch);
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const int fd = ch->shared_fd();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(60);
      Status s = Status::kOk;
      const auto mine = Channel::attach(fd, s);
      if (!mine) _exit(1);
      Sender tx(mine);
      if (write(ready[1], "x", 1) != 1) _exit(1);
      for (std::uint64_t seq = 0;; ++seq) {
        const auto m = message(seq);
        if (tx.send(m, Deadline::after(60s)) != Status::kOk) _exit(1);
      }
    }
    ready_pipe_wait(ready[0], 1);
    close(ready[0]);
    close(ready[1]);
    keep.close();
    // Receive for a random while (sometimes not at all), then kill the producer wherever
    // it is: inside a send, holding the producer lock, parked for room.
    std::vector<std::byte> out;
    std::uint64_t next = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 20000);
    while (std::chrono::steady_clock::now() < until) {
      const Status s = rx.try_recv(out);
      if (s == Status::kEmpty) continue;
      ASSERT_EQ(s, Status::kOk);
      std::uint64_t seq = 0;
      ASSERT_TRUE(intact(out, seq));
      ASSERT_EQ(seq, next++);
    }
    kill(pid, SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    Status s = Status::kOk;
    while ((s = rx.recv(out, Deadline::after(10s))) == Status::kOk) {
      std::uint64_t seq = 0;
      ASSERT_TRUE(intact(out, seq));  // never torn
      ASSERT_EQ(seq, next++);         // never duplicated, never a gap
    }
    EXPECT_EQ(s, Status::kPeerDied);
    EXPECT_LT(std::chrono::steady_clock::now() - killed, kDetectionBound);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
}

TEST(SharedKillStressTest, AConsumerKilledAtRandomPoints) {
  std::mt19937_64 rng(67890);
  constexpr std::uint64_t kMessages = 3000;
  const std::size_t counters_bytes = sizeof(std::uint32_t) * kMessages;
  for (int run = 0; run < 50; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    void* mem = mmap(nullptr, counters_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    auto* counters = static_cast<std::uint32_t*>(mem);
    const auto ch = make_shared_channel(1 + rng() % 64);
    ASSERT_TRUE(ch);
    Sender tx(ch);
    Receiver keep(ch);
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const int fd = ch->shared_fd();
    pid_t pids[2];
    for (pid_t& pid : pids) {
      pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        alarm(60);
        tx.close();  // the child's copies of the parent's ends (fork duplicates them)
        keep.close();
        Status s = Status::kOk;
        const auto mine = Channel::attach(fd, s);
        if (!mine) _exit(1);
        Receiver rx(mine);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        std::vector<std::byte> out;
        std::uint64_t last = 0;
        bool any = false;
        for (;;) {
          const Status r = rx.recv(out, Deadline::after(60s));
          if (r == Status::kClosed) _exit(0);
          std::uint64_t seq = 0;
          if (r != Status::kOk || !intact(out, seq) || seq >= kMessages || (any && seq <= last)) _exit(1);
          any = true;
          last = seq;
          std::atomic_ref<std::uint32_t>(counters[seq]).fetch_add(1);
        }
      }
    }
    ready_pipe_wait(ready[0], 2);
    close(ready[0]);
    close(ready[1]);
    keep.close();
    const std::uint64_t kill_at = rng() % kMessages;
    for (std::uint64_t seq = 0; seq < kMessages; ++seq) {
      if (seq == kill_at) kill(pids[0], SIGKILL);
      const auto m = message(seq);
      ASSERT_EQ(tx.send(m, Deadline::after(kDetectionBound + 10s)), Status::kOk) << "message " << seq;
    }
    tx.close();  // the survivor drains and sees the channel closed
    int status = 0;
    ASSERT_EQ(waitpid(pids[1], &status, 0), pids[1]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the surviving consumer";
    ASSERT_EQ(waitpid(pids[0], &status, 0), pids[0]);
    std::uint64_t missing = 0;
    std::uint64_t duplicated = 0;
    for (std::uint64_t i = 0; i < kMessages; ++i) {
      missing += counters[i] == 0 ? 1 : 0;
      duplicated += counters[i] > 1 ? 1 : 0;
    }
    EXPECT_EQ(duplicated, 0U);
    // Only a message the killed consumer had taken but not yet counted can be missing.
    EXPECT_LE(missing, 1U);
    munmap(mem, counters_bytes);
  }
}

}  // namespace
}  // namespace xchan
