// ValueRing with a value type that counts constructions and destructions: nothing leaks,
// nothing is destroyed twice, including objects still queued when the ring goes away.
#include "xchan/core/value_ring.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace xchan::core {
namespace {

struct Tracked {
  static inline int live = 0;
  static inline int constructed = 0;
  static inline int destroyed = 0;

  explicit Tracked(int v) : value(v), alive(true) { ++live, ++constructed; }
  Tracked(const Tracked& o) : value(o.value), alive(true) {
    EXPECT_TRUE(o.alive);
    ++live, ++constructed;
  }
  Tracked(Tracked&& o) noexcept : value(o.value), alive(true) {
    EXPECT_TRUE(o.alive);
    ++live, ++constructed;
  }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    EXPECT_TRUE(alive) << "destroyed twice";
    alive = false;
    --live, ++destroyed;
  }
  static void reset() { live = constructed = destroyed = 0; }

  int value;
  bool alive;
};

TEST(ValueRingTest, EveryConstructedValueIsDestroyedExactlyOnce) {
  Tracked::reset();
  {
    ValueRing<Tracked> ring(8);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(ring.try_emplace(i));
    for (int i = 0; i < 3; ++i) {
      auto v = ring.try_pop();
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(v->value, i);
    }
    EXPECT_EQ(Tracked::live, 2);  // two still queued
  }  // the ring destroys the two still queued
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(Tracked::constructed, Tracked::destroyed);
}

TEST(ValueRingTest, FullRingConstructsNothing) {
  Tracked::reset();
  ValueRing<Tracked> ring(2);
  ASSERT_TRUE(ring.try_emplace(1));
  ASSERT_TRUE(ring.try_emplace(2));
  EXPECT_FALSE(ring.try_emplace(3));
  EXPECT_EQ(Tracked::constructed, 2);
}

TEST(ValueRingTest, OwningTypesCrossThreadsWithoutLeaks) {
  ValueRing<std::string> ring(64);
  constexpr int kCount = 50'000;
  std::jthread producer([&] {
    for (int i = 0; i < kCount; ++i) {
      std::string s(static_cast<std::size_t>(20 + i % 50), static_cast<char>('a' + i % 26));
      while (!ring.try_emplace(std::move(s))) std::this_thread::yield();
    }
  });
  for (int i = 0; i < kCount;) {
    auto s = ring.try_pop();
    if (!s) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(s->size(), static_cast<std::size_t>(20 + i % 50));
    ASSERT_EQ((*s)[0], static_cast<char>('a' + i % 26));
    ++i;
  }
  producer.join();
}

}  // namespace
}  // namespace xchan::core
