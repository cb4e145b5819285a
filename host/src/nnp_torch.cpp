// The shim: a C interface over LibTorch for the Fortran host (see nnp_torch.h).
//
// Every entry point catches every exception and turns it into a status code and a message,
// so a bad artifact ends the host with a clear error, never with an abort or a segfault.

#include "nnp_torch.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;

void set_message(char *buf, int len, const std::string &text) {
  if (buf == nullptr || len <= 0) return;
  std::size_t n = std::min<std::size_t>(text.size(), static_cast<std::size_t>(len - 1));
  std::memcpy(buf, text.data(), n);
  std::memset(buf + n, ' ', static_cast<std::size_t>(len) - n);  // Fortran strings: blanks
  buf[len - 1] = ' ';
}

// the informative line of a LibTorch message: the Python-style "RuntimeError: ..." line of
// a TorchScript interpreter error, else the first line (the rest is a C++ backtrace)
std::string first_line(const std::string &text) {
  for (const char *tag : {"RuntimeError: ", "Error: "}) {
    auto at = text.rfind(tag);
    if (at != std::string::npos) {
      auto line = text.substr(at + std::strlen(tag));
      return line.substr(0, line.find('\n'));
    }
  }
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? text : line;
}

std::vector<std::string> split(const std::string &csv) {
  std::vector<std::string> out;
  std::stringstream stream(csv);
  std::string item;
  while (std::getline(stream, item, ',')) {
    auto begin = item.find_first_not_of(' ');
    auto end = item.find_last_not_of(' ');
    out.push_back(begin == std::string::npos ? "" : item.substr(begin, end - begin + 1));
  }
  return out;
}

std::string list(const std::vector<std::string> &items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

struct ContractError {
  std::string message;
};

void require(bool ok, const std::string &message) {
  if (!ok) throw ContractError{message};
}

c10::ScalarType scalar_type(int dtype) {
  if (dtype == NNP_kFloat32) return torch::kFloat32;
  if (dtype == NNP_kFloat64) return torch::kFloat64;
  throw std::invalid_argument("unsupported dtype code " + std::to_string(dtype) +
                              " (6 = float32, 7 = float64)");
}

std::string dtype_name(c10::ScalarType t) {
  if (t == torch::kFloat32) return "float32";
  if (t == torch::kFloat64) return "float64";
  return std::string(c10::toString(t));
}

// the whole contract check; throws ContractError with the message for the user
void check_contract(const std::string &path, int n_cells, double dx,
                    const std::vector<std::string> &inputs,
                    const std::vector<std::string> &units, const std::string &output,
                    const std::string &output_units, const std::string &dtype, int &width,
                    int &n_features, std::string &model) {
  std::ifstream file(path);
  require(file.good(), "cannot open the contract " + path);
  json c;
  try {
    c = json::parse(file);
  } catch (const json::parse_error &err) {
    throw ContractError{"the contract " + path + " is not valid JSON: " + err.what()};
  }
  require(c.is_object(), "the contract must be a JSON object");
  require(c.value("format", "") == "nnparam-closure-artifact",
          "the contract's format is not nnparam-closure-artifact");
  require(c.value("contract_version", -1) == 1,
          "contract_version " + c.value("contract_version", json()).dump() +
              ": this host understands version 1");

  // inputs: names and units, in the order the host passes them
  require(c.contains("inputs") && c["inputs"].is_array(), "the contract lists no inputs");
  std::vector<std::string> names, have_units;
  for (const auto &item : c["inputs"]) {
    names.push_back(item.at("name").get<std::string>());
    have_units.push_back(item.at("units").get<std::string>());
  }
  if (names != inputs) {
    auto a = names, b = inputs;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    throw ContractError{"the artifact reads the inputs " + list(names) +
                        ", this host provides " + list(inputs) +
                        (a == b ? " (same fields, other order)" : "")};
  }
  require(have_units == units, "input units differ: the artifact expects " +
                                   list(have_units) + ", this host provides " + list(units));
  const auto &out = c.at("output");
  require(out.at("name").get<std::string>() == output,
          "the artifact returns " + out.at("name").get<std::string>() + ", this host adds " +
              output);
  require(out.at("units").get<std::string>() == output_units,
          "the artifact's output is in " + out.at("units").get<std::string>() +
              ", this host adds " + output_units);
  const std::string have_dtype = c.at("dtype").get<std::string>();
  require(have_dtype == dtype, "the contract's dtype is " + have_dtype + ", this host passes " +
                                   dtype + " tensors");

  // grid: the resolution the closure was trained at must be the host's
  require(c.contains("grid") && c["grid"].is_object(),
          "the contract records no training grid; this host refuses a closure of unknown "
          "resolution");
  const auto &grid = c["grid"];
  const int cells = grid.at("n_cells").get<int>();
  const double spacing = grid.at("dx").get<double>();
  if (cells != n_cells || std::fabs(spacing - dx) > 1e-9 * std::fabs(dx)) {
    std::ostringstream msg;
    msg << "grid mismatch: the closure was trained on " << cells << " cells of " << spacing
        << " " << grid.value("units", "") << ", this host runs " << n_cells << " cells of "
        << dx << " " << grid.value("units", "");
    throw ContractError{msg.str()};
  }

  // features and shapes: consistent with the stencil width
  width = c.at("stencil_width").get<int>();
  require(width >= 0, "stencil_width must be >= 0");
  n_features = static_cast<int>(names.size()) * (2 * width + 1);
  require(c.at("features").size() == static_cast<std::size_t>(n_features),
          "the contract lists " + std::to_string(c.at("features").size()) +
              " features, its inputs and stencil width make " + std::to_string(n_features));
  const auto &shapes = c.at("shapes");
  require(shapes.at("input").size() == 2 && shapes.at("input")[1].get<int>() == n_features,
          "shapes.input must be [batch, " + std::to_string(n_features) + "]");
  require(shapes.at("output").size() == 2 && shapes.at("output")[1].get<int>() == 1,
          "shapes.output must be [batch, 1]: this host adds one tendency per cell");
  const auto &norm = c.at("normalisation");
  for (const char *key : {"x_mean", "x_std"})
    require(norm.at(key).size() == static_cast<std::size_t>(n_features),
            std::string("normalisation.") + key + " must hold one value per feature");

  // the TorchScript file, beside the contract
  require(c.at("files").contains("torchscript"),
          "the artifact has no TorchScript file (files.torchscript)");
  std::string name = c["files"]["torchscript"].get<std::string>();
  std::string folder = path.substr(0, path.find_last_of('/') == std::string::npos
                                          ? 0
                                          : path.find_last_of('/') + 1);
  model = folder + name;
  require(std::ifstream(model).good(), "the contract names " + name +
                                           " for TorchScript, but " + model + " is missing");
}

}  // namespace

extern "C" {

int nnp_contract_check(const char *contract_path, int n_cells, double dx, const char *inputs,
                       const char *units, const char *output, const char *output_units,
                       const char *dtype, int *stencil_width, int *n_features,
                       char *model_path, int model_path_len, char *errmsg, int errmsg_len) {
  try {
    std::string model;
    int width = 0, n_feat = 0;
    check_contract(contract_path, n_cells, dx, split(inputs), split(units), output,
                   output_units, dtype, width, n_feat, model);
    require(static_cast<int>(model.size()) < model_path_len,
            "the model path is longer than the host's buffer: " + model);
    *stencil_width = width;
    *n_features = n_feat;
    set_message(model_path, model_path_len, model);
    set_message(errmsg, errmsg_len, "");
    return NNP_OK;
  } catch (const ContractError &err) {
    set_message(errmsg, errmsg_len, err.message);
  } catch (const json::exception &err) {  // a field of the wrong type or missing
    set_message(errmsg, errmsg_len, std::string("malformed contract: ") + err.what());
  } catch (const std::exception &err) {
    set_message(errmsg, errmsg_len, std::string("contract check failed: ") + err.what());
  } catch (...) {
    set_message(errmsg, errmsg_len, "contract check failed with an unknown error");
  }
  return NNP_ERR_CONTRACT;
}

void *nnp_torch_jit_load(const char *filename, int device_type, int *status, char *errmsg,
                         int errmsg_len) {
  *status = NNP_ERR_TORCH;
  try {
    if (device_type != NNP_kCPU) {
      set_message(errmsg, errmsg_len, "this shim runs on the CPU only (device_type 0)");
      return nullptr;
    }
    auto *module = new torch::jit::script::Module(torch::jit::load(filename));
    module->eval();
    *status = NNP_OK;
    set_message(errmsg, errmsg_len, "");
    return module;
  } catch (const c10::Error &err) {
    set_message(errmsg, errmsg_len, std::string("LibTorch could not load ") + filename + ": " +
                                        first_line(err.what_without_backtrace()));
  } catch (const std::exception &err) {
    set_message(errmsg, errmsg_len,
                std::string("could not load ") + filename + ": " + first_line(err.what()));
  } catch (...) {
    set_message(errmsg, errmsg_len, std::string("could not load ") + filename);
  }
  return nullptr;
}

int nnp_torch_jit_module_check(void *model, int dtype, int n_features, int n_outputs,
                               char *errmsg, int errmsg_len) {
  try {
    auto *module = static_cast<torch::jit::script::Module *>(model);
    const auto want = scalar_type(dtype);
    for (const auto &p : module->parameters())
      require(p.scalar_type() == want, "the network's weights are " +
                                           dtype_name(p.scalar_type()) +
                                           " but the contract says " + dtype_name(want));
    for (const auto &b : module->buffers())
      require(!b.is_floating_point() || b.scalar_type() == want,
              "the network's buffers are " + dtype_name(b.scalar_type()) +
                  " but the contract says " + dtype_name(want));
    c10::InferenceMode guard;
    std::vector<torch::jit::IValue> probe{torch::zeros({2, n_features}, want)};
    auto result = module->forward(probe);
    require(result.isTensor(), "the network returns no single tensor");
    auto out = result.toTensor();
    require(out.dim() == 2 && out.size(0) == 2 && out.size(1) == n_outputs,
            "a probe batch (2, " + std::to_string(n_features) + ") gives an output of shape " +
                c10::str(out.sizes()) + ", expected (2, " + std::to_string(n_outputs) + ")");
    require(out.scalar_type() == want, "the network returns " +
                                           dtype_name(out.scalar_type()) + ", expected " +
                                           dtype_name(want));
    set_message(errmsg, errmsg_len, "");
    return NNP_OK;
  } catch (const ContractError &err) {
    set_message(errmsg, errmsg_len, err.message);
    return NNP_ERR_CONTRACT;
  } catch (const c10::Error &err) {  // the network does not do what its contract says
    set_message(errmsg, errmsg_len, "the network rejects a probe batch of the contract's "
                                    "shape and dtype: " +
                                        first_line(err.what_without_backtrace()));
    return NNP_ERR_CONTRACT;
  } catch (const std::exception &err) {
    set_message(errmsg, errmsg_len, "the network rejects a probe batch of the contract's "
                                    "shape and dtype: " + first_line(err.what()));
    return NNP_ERR_CONTRACT;
  } catch (...) {
    set_message(errmsg, errmsg_len, "probe failed with an unknown error");
  }
  return NNP_ERR_TORCH;
}

void *nnp_torch_from_blob(void *data, int ndim, const int64_t *shape, const int64_t *strides,
                          int dtype, int device_type, int *status, char *errmsg,
                          int errmsg_len) {
  *status = NNP_ERR_TORCH;
  try {
    if (device_type != NNP_kCPU) {
      set_message(errmsg, errmsg_len, "this shim runs on the CPU only (device_type 0)");
      return nullptr;
    }
    std::vector<int64_t> sizes(shape, shape + ndim), steps(strides, strides + ndim);
    auto options = torch::TensorOptions().dtype(scalar_type(dtype)).device(torch::kCPU);
    auto *tensor = new torch::Tensor(torch::from_blob(data, sizes, steps, options));
    *status = NNP_OK;
    set_message(errmsg, errmsg_len, "");
    return tensor;
  } catch (const std::exception &err) {
    set_message(errmsg, errmsg_len, std::string("cannot wrap the array: ") +
                                        first_line(err.what()));
  }
  return nullptr;
}

int nnp_torch_jit_module_forward(void *model, void **inputs, int n_inputs, void **outputs,
                                 int n_outputs, char *errmsg, int errmsg_len) {
  try {
    auto *module = static_cast<torch::jit::script::Module *>(model);
    c10::InferenceMode guard;
    std::vector<torch::jit::IValue> args;
    args.reserve(static_cast<std::size_t>(n_inputs));
    for (int i = 0; i < n_inputs; ++i) args.emplace_back(*static_cast<torch::Tensor *>(inputs[i]));
    auto result = module->forward(args);
    std::vector<torch::Tensor> results;
    if (result.isTensor()) {
      results.push_back(result.toTensor());
    } else if (result.isTuple()) {
      for (const auto &item : result.toTupleRef().elements()) results.push_back(item.toTensor());
    }
    if (static_cast<int>(results.size()) != n_outputs) {
      set_message(errmsg, errmsg_len, "the network returns " + std::to_string(results.size()) +
                                          " tensors, the host expects " +
                                          std::to_string(n_outputs));
      return NNP_ERR_TORCH;
    }
    for (int i = 0; i < n_outputs; ++i) {
      auto &target = *static_cast<torch::Tensor *>(outputs[i]);
      if (results[i].sizes() != target.sizes()) {
        set_message(errmsg, errmsg_len, "the network returns shape " +
                                            c10::str(results[i].sizes()) +
                                            ", the host's output array has shape " +
                                            c10::str(target.sizes()));
        return NNP_ERR_TORCH;
      }
      target.copy_(results[i]);
    }
    set_message(errmsg, errmsg_len, "");
    return NNP_OK;
  } catch (const c10::Error &err) {
    set_message(errmsg, errmsg_len, "forward failed: " + first_line(err.what_without_backtrace()));
  } catch (const std::exception &err) {
    set_message(errmsg, errmsg_len, std::string("forward failed: ") + first_line(err.what()));
  } catch (...) {
    set_message(errmsg, errmsg_len, "forward failed with an unknown error");
  }
  return NNP_ERR_TORCH;
}

void nnp_torch_tensor_delete(void *tensor) { delete static_cast<torch::Tensor *>(tensor); }

void nnp_torch_jit_module_delete(void *model) {
  delete static_cast<torch::jit::script::Module *>(model);
}

void nnp_torch_set_num_threads(int n) {
  try {
    at::set_num_threads(n);
  } catch (...) {
  }
}

double nnp_wtime(void) {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // extern "C"
