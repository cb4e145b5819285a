/* C interface of the shim between the Fortran host and LibTorch (the C++ library inside the
 * torch wheel). The names follow FTorch's C layer (torch_jit_load, torch_from_blob,
 * torch_jit_module_forward, ...) with an nnp_ prefix, so a reader can swap this shim for
 * FTorch. Two differences, both for reliability: every call returns a status code with a
 * message instead of aborting the program, and the shim can validate an artifact's JSON
 * contract (nnp_contract_check) and probe a loaded network (nnp_torch_jit_module_check)
 * before the first time step.
 *
 * No C++ exception crosses this interface: each function catches them and reports.
 */
#ifndef NNP_TORCH_H
#define NNP_TORCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* status codes (also the host's exit codes) */
enum { NNP_OK = 0, NNP_ERR_CONTRACT = 2, NNP_ERR_TORCH = 4 };
/* FTorch's enumerators: data types and devices */
enum { NNP_kFloat32 = 6, NNP_kFloat64 = 7 };
enum { NNP_kCPU = 0 };

/* Read and validate the JSON contract at contract_path against what the host provides: its
 * grid (n_cells cells of dx), its input fields and units in call order (comma-separated),
 * the output it adds and its units, and the dtype of the tensors it passes. On success
 * returns NNP_OK with the stencil width, the number of features and the TorchScript file
 * (beside the contract) filled in. */
int nnp_contract_check(const char *contract_path, int n_cells, double dx, const char *inputs,
                       const char *units, const char *output, const char *output_units,
                       const char *dtype, int *stencil_width, int *n_features,
                       char *model_path, int model_path_len, char *errmsg, int errmsg_len);

/* Load a TorchScript module (NULL and a message on failure). */
void *nnp_torch_jit_load(const char *filename, int device_type, int *status, char *errmsg,
                         int errmsg_len);

/* Check that the module's parameters and buffers have the given dtype and that a probe batch
 * (2, n_features) of zeros gives an output of shape (2, n_outputs) and that dtype. */
int nnp_torch_jit_module_check(void *model, int dtype, int n_features, int n_outputs,
                               char *errmsg, int errmsg_len);

/* A tensor viewing host memory (no copy): shape and strides in elements. */
void *nnp_torch_from_blob(void *data, int ndim, const int64_t *shape, const int64_t *strides,
                          int dtype, int device_type, int *status, char *errmsg,
                          int errmsg_len);

/* Forward pass: the result is copied into the output tensors (which view host memory). */
int nnp_torch_jit_module_forward(void *model, void **inputs, int n_inputs, void **outputs,
                                 int n_outputs, char *errmsg, int errmsg_len);

void nnp_torch_tensor_delete(void *tensor);
void nnp_torch_jit_module_delete(void *model);

/* intra-op threads of LibTorch (the host runs one, like the Python comparison) */
void nnp_torch_set_num_threads(int n);

/* monotonic wall clock [s], for the per-step timings */
double nnp_wtime(void);

#ifdef __cplusplus
}
#endif
#endif
