// Waits that another thread ends early (a handle closed while its owner waits), and
// channels that a forked child must not use.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "xchan/channel/ends.hpp"

namespace xchan {
namespace {

using namespace std::chrono_literals;

struct Pair {
  Sender tx;
  Receiver rx;
};

Pair make(std::uint64_t capacity = 4) {
  ChannelConfig config;
  config.capacity = capacity;
  config.max_bytes = 4096;
  Pair p;
  EXPECT_EQ(make_channel(config, p.tx, p.rx), Status::kOk);
  return p;
}

// Waits on `wait` in a thread, then sets the flag and wakes that side: the wait must
// return (kOk) promptly, long before its own deadline.
template <class Wait, class Wake>
void expect_cancel_ends_the_wait(Wait wait, Wake wake, std::uint32_t& flag) {
  Status result = Status::kTimeout;
  const auto start = std::chrono::steady_clock::now();
  std::jthread waiter([&] { result = wait(Deadline::after(20s)); });
  std::this_thread::sleep_for(50ms);  // parked by now (spin 0)
  core::atomic_store(flag, 1U, std::memory_order_relaxed);
  wake();
  waiter.join();
  EXPECT_EQ(result, Status::kOk);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(ChannelWaitTest, SettingTheCancelFlagAndWakingReceiversEndsAReceiversWait) {
  Pair p = make();
  std::uint32_t flag = 0;
  Channel& ch = *p.rx.channel();
  expect_cancel_ends_the_wait([&](Deadline d) { return ch.wait_readable(d, 0, &flag); },
                              [&] { ch.wake_receivers(); }, flag);
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.try_recv(out), Status::kEmpty);  // woken by the flag, not by a message
}

TEST(ChannelWaitTest, SettingTheCancelFlagAndWakingSendersEndsASendersWait) {
  Pair p = make(1);
  ASSERT_EQ(p.tx.try_send(std::as_bytes(std::span("x", 1))), Status::kOk);
  std::uint32_t flag = 0;
  Channel& ch = *p.tx.channel();
  expect_cancel_ends_the_wait([&](Deadline d) { return ch.wait_writable(1, d, 0, &flag); },
                              [&] { ch.wake_senders(); }, flag);
  EXPECT_FALSE(ch.writable(1));  // still full
}

TEST(ChannelWaitTest, AFlagAlreadySetReturnsAtOnceAndAClearFlagStillTimesOut) {
  Pair p = make();
  Channel& ch = *p.rx.channel();
  std::uint32_t flag = 1;
  EXPECT_EQ(ch.wait_readable(Deadline::after(20s), 0, &flag), Status::kOk);
  flag = 0;
  EXPECT_EQ(ch.wait_readable(Deadline::after(20ms), 0, &flag), Status::kTimeout);
}

TEST(ChannelWaitTest, AForkedChildRefusesChannelsMadeBeforeTheFork) {
  Pair before = make();
  ASSERT_TRUE(before.tx.channel()->usable_in_this_process());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: the parent's channel is a private copy here; a new one works.
    Pair after = make();
    const bool ok = !before.tx.channel()->usable_in_this_process() && after.tx.channel()->usable_in_this_process() &&
                    after.tx.try_send(std::as_bytes(std::span("y", 1))) == Status::kOk;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(before.tx.channel()->usable_in_this_process());  // the parent is unaffected
}

TEST(ChannelWaitTest, AForkedChildClosesEndsWhoseLockAParentThreadHeldAtTheFork) {
  // Two senders: the producer side is shared, so a send holds its lock while it writes.
  // A thread of the parent is inside such a send when the process forks: in the child
  // the lock stays held forever, and closing the inherited ends must not wait for it.
  Pair p = make();
  Sender tx2(p.tx);
  std::atomic<bool> writing{false};
  std::atomic<bool> forked{false};
  std::jthread sender([&] {
    const Status s = p.tx.channel()->try_send_with(1, [&](std::span<std::byte> out) {
      writing.store(true);
      while (!forked.load()) std::this_thread::sleep_for(1ms);
      out[0] = std::byte{1};
      return std::size_t{1};
    });
    EXPECT_EQ(s, Status::kOk);
  });
  while (!writing.load()) std::this_thread::sleep_for(1ms);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);  // a hang ends the child by SIGALRM, which the parent reports
    tx2.close();
    p.tx.close();
    p.rx.close();
    _exit(0);
  }
  forked.store(true);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "the child was ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  sender.join();
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.try_recv(out), Status::kOk);  // the parent is unaffected
}

}  // namespace
}  // namespace xchan
