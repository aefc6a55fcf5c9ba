#include "formats/tensor_source.h"

namespace qforge {

GgufTensorSource::GgufTensorSource(std::shared_ptr<const GgufFile> file) : file_(std::move(file)) {
  for (const auto& t : file_->tensors()) tensors_.push_back({t.name, t.dims, t.type, t.size});
}

Result<std::span<const uint8_t>> GgufTensorSource::data(size_t i) {
  if (i >= tensors_.size()) return make_error(file_->path(), ": tensor index ", i, " out of range");
  return file_->tensor_data(file_->tensors()[i]);
}

void GgufTensorSource::release(size_t i) {
  if (i < tensors_.size()) file_->release(file_->tensors()[i]);
}

}  // namespace qforge
