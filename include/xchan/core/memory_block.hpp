// An anonymous, page-aligned memory mapping that backs one channel in this process.
// The shared-memory segment that backs a cross-process channel will offer the same view.
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

  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace xchan::core
