// A page-aligned memory mapping that backs one channel: anonymous and private to this
// process, or a shared segment (a memfd) that other processes map through its descriptor.
//
// Why memfd_create rather than a named segment (shm_open, Boost.Interprocess's
// shared_memory_object): a memfd has no name, so nothing can guess it, open it without
// being handed its descriptor, or be left behind in /dev/shm when every process that used
// it dies (the kernel frees it with its last descriptor and mapping); it travels the
// ways descriptors travel (inherited across fork, SCM_RIGHTS, multiprocessing's
// DupFd/resource sharer). Boost.Interprocess would add a name to clean up and nothing else
// this needs.
#pragma once

#include <cstddef>
#include <span>

#include "xchan/core/status.hpp"

namespace xchan::core {

/// Move-only owner of a mapping. Any thread may use the bytes; creation and destruction
/// are not concurrent with use.
class MemoryBlock {
 public:
  MemoryBlock() = default;
  MemoryBlock(MemoryBlock&& other) noexcept;
  MemoryBlock& operator=(MemoryBlock&& other) noexcept;
  MemoryBlock(const MemoryBlock&) = delete;
  MemoryBlock& operator=(const MemoryBlock&) = delete;
  ~MemoryBlock();

  /// Maps `size` zeroed bytes (rounded up to pages) and touches the first `prefault`
  /// bytes so the hot path takes no first-touch page faults there. kNoMemory on failure.
  [[nodiscard]] static Status map_anonymous(std::size_t size, std::size_t prefault,
                                            MemoryBlock& out) noexcept;

  /// Creates a shared segment of `size` bytes (rounded up to pages): a memfd, mode 0600,
  /// its space reserved now (a full tmpfs is kNoMemory here, never SIGBUS later), mapped
  /// shared; touches the first `prefault` bytes. kNoMemory on failure.
  [[nodiscard]] static Status map_new_shared(std::size_t size, std::size_t prefault, MemoryBlock& out) noexcept;

  /// Maps the whole shared segment `fd` refers to (a memfd made by map_new_shared,
  /// possibly in another process), keeping a duplicate of `fd`. kInvalidArgument if `fd`
  /// is not such a segment, kNoMemory if it cannot be mapped.
  [[nodiscard]] static Status map_existing_shared(int fd, MemoryBlock& out) noexcept;

  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }

  /// The shared segment's descriptor (owned; close-on-exec), or -1 for a private block.
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace xchan::core
