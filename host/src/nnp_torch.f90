!> Fortran 2008 bindings of the LibTorch shim (nnp_torch.h), shaped like FTorch's API.
!>
!> A reader moving to FTorch keeps the calls: torch_model_load, torch_tensor_from_array,
!> torch_model_forward and torch_delete have FTorch's names, argument order and meaning (the
!> tensor shape is the Fortran array's shape; `layout` gives the order in which its indices
!> vary in memory, [1, 2] for a plain Fortran array). What this module adds: an optional
!> `status` (and `errmsg`) on every call, so that the host decides how to fail instead of
!> the library aborting; contract_check and torch_model_check, which validate an artifact
!> before the first time step; and wall_time for the timings.
module nnp_torch
  use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_int, c_int64_t, c_double, &
                                         c_char, c_null_char, c_loc, c_associated
  use, intrinsic :: iso_fortran_env, only: real32, error_unit
  implicit none
  private

  public :: torch_model, torch_tensor, torch_kCPU, torch_kFloat32, torch_kFloat64
  public :: torch_model_load, torch_model_forward, torch_tensor_from_array, torch_delete
  public :: torch_model_check, contract_check, torch_set_num_threads, wall_time
  public :: NNP_OK, NNP_ERR_CONTRACT, NNP_ERR_TORCH, ERRMSG_LEN

  integer, parameter :: ERRMSG_LEN = 1024
  integer(c_int), parameter :: torch_kCPU = 0
  integer(c_int), parameter :: torch_kFloat32 = 6, torch_kFloat64 = 7
  integer(c_int), parameter :: NNP_OK = 0, NNP_ERR_CONTRACT = 2, NNP_ERR_TORCH = 4

  !> a TorchScript network (FTorch: torch_model)
  type :: torch_model
    type(c_ptr) :: p = c_null_ptr
  end type torch_model

  !> a tensor viewing a Fortran array (FTorch: torch_tensor)
  type :: torch_tensor
    type(c_ptr) :: p = c_null_ptr
  end type torch_tensor

  interface torch_delete
    module procedure torch_model_delete, torch_tensor_delete
  end interface torch_delete

  !> FTorch >= 1.1 makes the layout optional; both forms are accepted here
  interface torch_tensor_from_array
    module procedure tensor_from_array_layout, tensor_from_array_default
  end interface torch_tensor_from_array

  interface
    function c_contract_check(path, n_cells, dx, inputs, units, output, output_units, dtype, &
                              width, n_features, model_path, model_path_len, errmsg, &
                              errmsg_len) result(status) bind(c, name="nnp_contract_check")
      import :: c_int, c_double, c_char
      character(kind=c_char), intent(in) :: path(*), inputs(*), units(*), output(*)
      character(kind=c_char), intent(in) :: output_units(*), dtype(*)
      integer(c_int), value :: n_cells, model_path_len, errmsg_len
      real(c_double), value :: dx
      integer(c_int), intent(out) :: width, n_features
      character(kind=c_char), intent(out) :: model_path(*), errmsg(*)
      integer(c_int) :: status
    end function c_contract_check

    function c_jit_load(filename, device_type, status, errmsg, errmsg_len) result(model) &
        bind(c, name="nnp_torch_jit_load")
      import :: c_ptr, c_int, c_char
      character(kind=c_char), intent(in) :: filename(*)
      integer(c_int), value :: device_type, errmsg_len
      integer(c_int), intent(out) :: status
      character(kind=c_char), intent(out) :: errmsg(*)
      type(c_ptr) :: model
    end function c_jit_load

    function c_module_check(model, dtype, n_features, n_outputs, errmsg, errmsg_len) &
        result(status) bind(c, name="nnp_torch_jit_module_check")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: model
      integer(c_int), value :: dtype, n_features, n_outputs, errmsg_len
      character(kind=c_char), intent(out) :: errmsg(*)
      integer(c_int) :: status
    end function c_module_check

    function c_from_blob(data, ndim, shape, strides, dtype, device_type, status, errmsg, &
                         errmsg_len) result(tensor) bind(c, name="nnp_torch_from_blob")
      import :: c_ptr, c_int, c_int64_t, c_char
      type(c_ptr), value :: data
      integer(c_int), value :: ndim, dtype, device_type, errmsg_len
      integer(c_int64_t), intent(in) :: shape(*), strides(*)
      integer(c_int), intent(out) :: status
      character(kind=c_char), intent(out) :: errmsg(*)
      type(c_ptr) :: tensor
    end function c_from_blob

    function c_forward(model, inputs, n_inputs, outputs, n_outputs, errmsg, errmsg_len) &
        result(status) bind(c, name="nnp_torch_jit_module_forward")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: model, inputs, outputs
      integer(c_int), value :: n_inputs, n_outputs, errmsg_len
      character(kind=c_char), intent(out) :: errmsg(*)
      integer(c_int) :: status
    end function c_forward

    subroutine c_tensor_delete(tensor) bind(c, name="nnp_torch_tensor_delete")
      import :: c_ptr
      type(c_ptr), value :: tensor
    end subroutine c_tensor_delete

    subroutine c_module_delete(model) bind(c, name="nnp_torch_jit_module_delete")
      import :: c_ptr
      type(c_ptr), value :: model
    end subroutine c_module_delete

    subroutine torch_set_num_threads(n) bind(c, name="nnp_torch_set_num_threads")
      import :: c_int
      integer(c_int), value :: n
    end subroutine torch_set_num_threads

    function wall_time() result(seconds) bind(c, name="nnp_wtime")
      import :: c_double
      real(c_double) :: seconds
    end function wall_time
  end interface

contains

  !> the C string of a Fortran string
  pure function c_str(text) result(out)
    character(*), intent(in) :: text
    character(kind=c_char, len=len_trim(text) + 1) :: out
    out = trim(text)//c_null_char
  end function c_str

  !> stop the program with the message unless the caller asked for the status
  subroutine report(status, message, status_out, errmsg_out)
    integer(c_int), intent(in) :: status
    character(*), intent(in) :: message
    integer, optional, intent(out) :: status_out
    character(*), optional, intent(out) :: errmsg_out
    if (present(errmsg_out)) errmsg_out = message
    if (present(status_out)) then
      status_out = status
    else if (status /= NNP_OK) then
      write(error_unit, '(a)') "nnp_torch: "//trim(message)
      stop 4
    end if
  end subroutine report

  !> Validate an artifact's JSON contract against what this host provides (see nnp_torch.h).
  subroutine contract_check(contract, n_cells, dx, inputs, units, output, output_units, &
                            dtype, stencil_width, n_features, model_file, status, errmsg)
    character(*), intent(in) :: contract, inputs, units, output, output_units, dtype
    integer, intent(in) :: n_cells
    real(c_double), intent(in) :: dx
    integer, intent(out) :: stencil_width, n_features
    character(*), intent(out) :: model_file
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    character(kind=c_char, len=ERRMSG_LEN) :: message
    integer(c_int) :: code, width, n_feat
    code = c_contract_check(c_str(contract), int(n_cells, c_int), dx, c_str(inputs), &
                            c_str(units), c_str(output), c_str(output_units), c_str(dtype), &
                            width, n_feat, model_file, int(len(model_file), c_int), message, &
                            int(ERRMSG_LEN, c_int))
    stencil_width = width
    n_features = n_feat
    call report(code, trim(message), status, errmsg)
  end subroutine contract_check

  !> Load a TorchScript network (FTorch: torch_model_load).
  subroutine torch_model_load(model, filename, device_type, status, errmsg)
    type(torch_model), intent(out) :: model
    character(*), intent(in) :: filename
    integer(c_int), intent(in) :: device_type
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    character(kind=c_char, len=ERRMSG_LEN) :: message
    integer(c_int) :: code
    model%p = c_jit_load(c_str(filename), device_type, code, message, int(ERRMSG_LEN, c_int))
    call report(code, trim(message), status, errmsg)
  end subroutine torch_model_load

  !> Check the network's dtype and its output shape on a probe batch (not in FTorch).
  subroutine torch_model_check(model, dtype, n_features, n_outputs, status, errmsg)
    type(torch_model), intent(in) :: model
    integer(c_int), intent(in) :: dtype
    integer, intent(in) :: n_features, n_outputs
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    character(kind=c_char, len=ERRMSG_LEN) :: message
    integer(c_int) :: code
    code = c_module_check(model%p, dtype, int(n_features, c_int), int(n_outputs, c_int), &
                          message, int(ERRMSG_LEN, c_int))
    call report(code, trim(message), status, errmsg)
  end subroutine torch_model_check

  !> A tensor viewing a rank-2 real32 array, no copy (FTorch: torch_tensor_from_array).
  !> The tensor's shape is shape(array); layout lists the dimensions from fastest to slowest
  !> varying in memory ([1, 2] for a Fortran array, the default).
  subroutine tensor_from_array_layout(tensor, array, layout, device_type, status, errmsg)
    type(torch_tensor), intent(out) :: tensor
    real(real32), intent(in), target, contiguous :: array(:, :)
    integer, intent(in) :: layout(2)
    integer(c_int), intent(in) :: device_type
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    character(kind=c_char, len=ERRMSG_LEN) :: message
    integer(c_int64_t) :: dims(2), strides(2)
    integer(c_int) :: code
    if (any(layout /= [1, 2]) .and. any(layout /= [2, 1])) then
      call report(NNP_ERR_TORCH, "layout must be [1, 2] or [2, 1]", status, errmsg)
      return
    end if
    dims = shape(array, kind=c_int64_t)
    strides(layout(1)) = 1
    strides(layout(2)) = dims(layout(1))
    tensor%p = c_from_blob(c_loc(array), 2_c_int, dims, strides, torch_kFloat32, device_type, &
                           code, message, int(ERRMSG_LEN, c_int))
    call report(code, trim(message), status, errmsg)
  end subroutine tensor_from_array_layout

  subroutine tensor_from_array_default(tensor, array, device_type, status, errmsg)
    type(torch_tensor), intent(out) :: tensor
    real(real32), intent(in), target, contiguous :: array(:, :)
    integer(c_int), intent(in) :: device_type
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    call tensor_from_array_layout(tensor, array, [1, 2], device_type, status, errmsg)
  end subroutine tensor_from_array_default

  !> Run the network; the results are written into the arrays the output tensors view
  !> (FTorch: torch_model_forward).
  subroutine torch_model_forward(model, input_tensors, output_tensors, status, errmsg)
    type(torch_model), intent(in) :: model
    type(torch_tensor), intent(in) :: input_tensors(:), output_tensors(:)
    integer, optional, intent(out) :: status
    character(*), optional, intent(out) :: errmsg
    type(c_ptr), target :: inputs(size(input_tensors)), outputs(size(output_tensors))
    character(kind=c_char, len=ERRMSG_LEN) :: message
    integer(c_int) :: code
    integer :: i
    if (.not. c_associated(model%p)) then
      call report(NNP_ERR_TORCH, "forward on a model that was not loaded", status, errmsg)
      return
    end if
    do i = 1, size(input_tensors)
      inputs(i) = input_tensors(i)%p
    end do
    do i = 1, size(output_tensors)
      outputs(i) = output_tensors(i)%p
    end do
    code = c_forward(model%p, c_loc(inputs), int(size(inputs), c_int), c_loc(outputs), &
                     int(size(outputs), c_int), message, int(ERRMSG_LEN, c_int))
    call report(code, trim(message), status, errmsg)
  end subroutine torch_model_forward

  subroutine torch_model_delete(model)
    type(torch_model), intent(inout) :: model
    if (c_associated(model%p)) call c_module_delete(model%p)
    model%p = c_null_ptr
  end subroutine torch_model_delete

  subroutine torch_tensor_delete(tensor)
    type(torch_tensor), intent(inout) :: tensor
    if (c_associated(tensor%p)) call c_tensor_delete(tensor%p)
    tensor%p = c_null_ptr
  end subroutine torch_tensor_delete

end module nnp_torch
