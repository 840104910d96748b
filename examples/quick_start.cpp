// The README's C++ example, built and run as a test so that it stays true.
#include <cstdio>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "xchan/channel/ends.hpp"

int main() {
  xchan::Sender tx;
  xchan::Receiver rx;
  xchan::ChannelConfig config;  // capacity 1024 messages, 1 MiB buffer
  if (xchan::make_channel(config, tx, rx) != xchan::Status::kOk) return 1;

  std::thread producer([tx = std::move(tx)]() mutable {
    const std::string msg = "hello";
    (void)tx.send(std::as_bytes(std::span(msg)), xchan::Deadline::never());
  });  // the last Sender going away closes the channel

  std::vector<std::byte> out;
  int received = 0;
  while (rx.recv(out, xchan::Deadline::after(std::chrono::seconds(1))) == xchan::Status::kOk) {
    std::printf("%.*s\n", static_cast<int>(out.size()), reinterpret_cast<const char*>(out.data()));
    ++received;
  }  // kClosed once every sender is gone and the ring drained
  producer.join();
  return received == 1 ? 0 : 1;
}
