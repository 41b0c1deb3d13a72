// The error types every module throws at its boundary. Each message names what was expected and
// what came, so a user can fix the call without reading the source.
#pragma once

#include <stdexcept>
#include <string>

namespace flashjit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a value that can never be valid (bad constructor argument, overflowing shape).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A tensor's rank or dimensions disagree with what the operation needs.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file could not be read or written, or its contents are malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

// The compiler could not build a kernel: a malformed graph, or LLVM refused.
class CompileError : public Error {
 public:
  using Error::Error;
};

// The API was called in the wrong order (backward before forward, update before backward).
class StateError : public Error {
 public:
  using Error::Error;
};

}  // namespace flashjit
