// EventCount: the key protocol (no lost wake-ups), timeouts, and a ping-pong stress in
// which any lost wake-up shows up as a timeout instead of a hang.
#include "xchan/channel/event_count.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace xchan {
namespace {

using namespace std::chrono_literals;

TEST(EventCountTest, NotifyBetweenPrepareAndWaitIsNotLost) {
  // The waiter took its key, then a notify happened before it parked. Waiting on the key
  // must return at once; an implementation that re-read the epoch inside wait() would
  // sleep until the deadline here.
  EventCountWord word{};
  EventCount ec(word);
  const auto key = ec.prepare_wait();
  EventCount(word).notify(1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ec.wait(key, Deadline::after(5s)), Status::kOk);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(ec.waiters(), 0U);
}

TEST(EventCountTest, NotifyFromAnotherThreadBetweenPrepareAndWaitIsNotLost) {
  EventCountWord word{};
  EventCount ec(word);
  const auto key = ec.prepare_wait();
  std::thread([&] { EventCount(word).notify_all(); }).join();
  EXPECT_EQ(ec.wait(key, Deadline::after(5s)), Status::kOk);
}

TEST(EventCountTest, NotifyWithoutWaitersSkipsTheWake) {
  EventCountWord word{};
  EventCount(word).notify(1);
  EXPECT_EQ(word.epoch, 0U);  // no waiter registered: no epoch bump, no syscall
}

TEST(EventCountTest, WaitTimesOutAtTheDeadline) {
  EventCountWord word{};
  EventCount ec(word);
  const auto start = std::chrono::steady_clock::now();
  const auto key = ec.prepare_wait();
  EXPECT_EQ(ec.wait(key, Deadline::after(30ms)), Status::kTimeout);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 30ms);
  EXPECT_EQ(ec.waiters(), 0U);
}

TEST(EventCountTest, CancelWaitWithdrawsTheWaiter) {
  EventCountWord word{};
  EventCount ec(word);
  (void)ec.prepare_wait();
  EXPECT_EQ(ec.waiters(), 1U);
  ec.cancel_wait();
  EXPECT_EQ(ec.waiters(), 0U);
}

TEST(EventCountTest, ParkedWaiterIsWokenByNotify) {
  EventCountWord word{};
  std::atomic<bool> ready{false};
  std::thread waiter([&] {
    EventCount ec(word);
    for (;;) {
      const auto key = ec.prepare_wait();
      if (ready.load()) {
        ec.cancel_wait();
        return;
      }
      ASSERT_NE(ec.wait(key, Deadline::after(10s)), Status::kTimeout);
    }
  });
  while (EventCount(word).waiters() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(5ms);  // let it reach the futex
  ready.store(true);
  EventCount(word).notify(1);
  waiter.join();
}

TEST(EventCountTest, PingPongLosesNoWakeUp) {
  // Two threads hand a token back and forth, each parking until it is its turn. A lost
  // wake-up parks one side until the 10 s deadline, which fails the test.
  EventCountWord word{};
  std::atomic<std::uint32_t> turn{0};
  constexpr std::uint32_t kRounds = 20'000;
  auto player = [&](std::uint32_t me) {
    EventCount ec(word);
    for (std::uint32_t round = 0; round < kRounds; ++round) {
      for (;;) {
        if (turn.load() % 2 == me) break;
        const auto key = ec.prepare_wait();
        if (turn.load() % 2 == me) {
          ec.cancel_wait();
          break;
        }
        ASSERT_NE(ec.wait(key, Deadline::after(10s)), Status::kTimeout) << "lost wake-up";
      }
      turn.fetch_add(1);
      ec.notify_all();
    }
  };
  std::thread a(player, 0U);
  std::thread b(player, 1U);
  a.join();
  b.join();
  EXPECT_EQ(turn.load(), 2 * kRounds);
}

}  // namespace
}  // namespace xchan
