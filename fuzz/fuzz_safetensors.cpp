// libFuzzer target: any byte string given to the safetensors reader is parsed or rejected with an
// IoError. Any other exception, a sanitizer report, a crash or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "ir/error.h"
#include "runtime/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto contents = flashjit::io::parse_safetensors(std::as_bytes(std::span(data, size)), "<fuzz input>");
    // Widening every decoded tensor reads all of its values, so the sanitizers see each access.
    for (const auto& [name, tensor] : contents.tensors) (void)tensor.to<double>();
  } catch (const flashjit::IoError&) {
  }
  return 0;
}
