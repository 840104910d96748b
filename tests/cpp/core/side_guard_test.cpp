// SideGuard's debug check of the lock-free path's precondition: one user at a time.
#include <gtest/gtest.h>

#include <vector>

#include "xchan/core/mpmc_byte_ring.hpp"

namespace xchan::core {
namespace {

TEST(SideGuardDeathTest, ASecondUserOfAnExclusiveSideIsCaughtInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the check is compiled into debug builds only (CI's sanitizer builds)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<std::uint64_t> data(512);
  MpmcRingHeader header{};
  MpmcByteRing ring;
  const auto bytes = std::as_writable_bytes(std::span<std::uint64_t>(data));
  ASSERT_EQ(MpmcByteRing::init(header, bytes, 8), Status::kOk);
  ASSERT_EQ(ring.attach(header, bytes), Status::kOk);
  header.producer.exclusive = 1;
  const std::byte msg[8] = {};
  ASSERT_EQ(ring.try_push(msg), Status::kOk);  // one user: fine
  // Another user is inside the lock-free critical section: `busy` is already set.
  header.producer.busy = 1;
  EXPECT_DEATH((void)ring.try_push(msg), "two threads in a channel side");
#endif
}

}  // namespace
}  // namespace xchan::core
