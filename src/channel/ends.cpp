// Sender/Receiver: end counting and the batch send.
#include "xchan/channel/ends.hpp"

namespace xchan {

Sender::Sender(std::shared_ptr<Channel> channel) noexcept : channel_(std::move(channel)) {
  if (channel_ && !channel_->add_sender()) channel_.reset();  // that side closed for good
}

void Sender::close() noexcept {
  if (channel_) {
    channel_->remove_sender();
    channel_.reset();
  }
}

Status Sender::send_many(std::span<const std::span<const std::byte>> payloads, Deadline deadline,
                         std::size_t& sent) noexcept {
  sent = 0;
  if (!channel_) return Status::kClosed;
  while (sent < payloads.size()) {
    const auto rest = payloads.subspan(sent);
    std::size_t went = 0;
    const Status s = channel_->try_send_many_with(
        rest.size(), [&](std::size_t i) { return rest[i].size(); },
        [&](std::size_t i, std::span<std::byte> out) { return CopyFrom{rest[i]}(out); }, went);
    sent += went;
    if (s == Status::kOk) continue;
    if (s != Status::kFull) return s;
    const Status w = channel_->wait_writable(rest[0].size(), deadline, channel_->spin_iterations());
    if (w != Status::kOk) return w;
  }
  return Status::kOk;
}

Receiver::Receiver(std::shared_ptr<Channel> channel) noexcept : channel_(std::move(channel)) {
  if (channel_ && !channel_->add_receiver()) channel_.reset();
}

void Receiver::close() noexcept {
  if (channel_) {
    channel_->remove_receiver();
    channel_.reset();
  }
}

Status make_channel(const ChannelConfig& config, Sender& sender, Receiver& receiver) {
  Status status = Status::kOk;
  std::shared_ptr<Channel> channel = Channel::create(config, status);
  if (!channel) return status;
  sender = Sender(channel);
  receiver = Receiver(std::move(channel));
  return Status::kOk;
}

}  // namespace xchan
