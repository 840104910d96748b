// ChannelRegistry: ids find live channels and never keep them alive.
#include "xchan/channel/registry.hpp"

#include <gtest/gtest.h>

#include "xchan/channel/channel.hpp"

namespace xchan {
namespace {

TEST(ChannelRegistryTest, FindsALiveChannelByItsId) {
  Status s;
  auto ch = Channel::create({}, s);
  ASSERT_TRUE(ch);
  EXPECT_NE(ch->id(), 0U);
  EXPECT_EQ(ChannelRegistry::instance().find(ch->id()), ch);
}

TEST(ChannelRegistryTest, ForgetsAChannelWhenItIsDestroyed) {
  Status s;
  auto ch = Channel::create({}, s);
  const std::uint64_t id = ch->id();
  const std::size_t before = ChannelRegistry::instance().size();
  ch.reset();
  EXPECT_EQ(ChannelRegistry::instance().find(id), nullptr);
  EXPECT_EQ(ChannelRegistry::instance().size(), before - 1);
}

TEST(ChannelRegistryTest, IdsAreNotReused) {
  Status s;
  auto a = Channel::create({}, s);
  const std::uint64_t first = a->id();
  a.reset();
  auto b = Channel::create({}, s);
  EXPECT_NE(b->id(), first);
  EXPECT_EQ(ChannelRegistry::instance().find(first), nullptr);
}

}  // namespace
}  // namespace xchan
