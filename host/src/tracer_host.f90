!> The host model: the book's coarse 1-D tracer in Fortran, with a neural closure called
!> through LibTorch at every SSP-RK3 stage, exactly where nnparam.tracer.run_coarse calls it.
!>
!> Usage:  tracer_host run.nml
!>
!> The namelist (written by nnparam.host.write_config) gives the grid, the time step, the
!> wind's waves, the initial state (a raw float64 file, members x cells in C order) and the
!> artifact's contract (empty: no closure). The host writes the states every `save_every`
!> steps to `out_file` (raw float64, saves x members x cells) and its timings to
!> `timing_file` (JSON).
!>
!> Exit codes: 0 success; 2 bad configuration or an artifact whose contract does not match
!> this host (grid, inputs, units, dtype, shapes); 3 NaN or inf from the network (the step,
!> stage, member and cell are reported); 4 LibTorch failed to load or run the network;
!> 5 the state itself became NaN or inf.
program tracer_host
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit, real32, int64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite
  use, intrinsic :: ieee_exceptions, only: ieee_set_flag, ieee_all
  use, intrinsic :: iso_c_binding, only: c_int
  use tracer_dynamics
  use nnp_torch
  implicit none

  integer, parameter :: MAX_MODES = 64, PATH_LEN = 4096
  integer, parameter :: EXIT_CONFIG = 2, EXIT_NETWORK_NAN = 3, EXIT_TORCH = 4, EXIT_BLOWUP = 5

  ! ---- namelist &run
  integer :: n_fine = 512, factor = 16, n_steps = 0, save_every = 1, members = 1, threads = 1
  real(dp) :: length = 2000.0_dp, lam = -0.1_dp, alpha = -0.1_dp, dt = 0.0_dp
  character(len=PATH_LEN) :: contract = '', q0_file = '', out_file = '', timing_file = ''
  namelist /run/ n_fine, factor, length, lam, alpha, dt, n_steps, save_every, members, &
                 threads, contract, q0_file, out_file, timing_file
  ! ---- namelist &wind: u = u_mean (1 + L + (1 + L)**2 G); per mode amplitude, k [rad/km],
  ! omega [rad/h], phase [rad]
  integer :: n_large = 0, n_gusts = 0
  real(dp) :: u_mean = 40.0_dp
  real(dp), dimension(MAX_MODES) :: large_amp = 0, large_k = 0, large_omega = 0, &
                                    large_phase = 0, gust_amp = 0, gust_k = 0, &
                                    gust_omega = 0, gust_phase = 0
  namelist /wind/ u_mean, n_large, large_amp, large_k, large_omega, large_phase, n_gusts, &
                  gust_amp, gust_k, gust_omega, gust_phase

  type(wind_model) :: the_wind
  type(torch_model) :: model
  type(torch_tensor) :: in_tensor(1), out_tensor(1)
  real(dp), allocatable :: q(:, :), q1(:, :), q2(:, :), k(:, :), u_face(:)
  real(real32), allocatable, target :: features(:, :), net_out(:, :)
  character(len=PATH_LEN) :: config, model_file
  character(len=ERRMSG_LEN) :: message
  logical :: use_closure
  integer :: n, batch, width = 0, n_features = 0, status, step, stage, unit_out, saves
  real(dp) :: coarse_dx, t, t_stage
  ! timings [s]
  real(dp) :: t_network = 0, t_marshal = 0, t_io = 0, t_loop = 0, clock0, clock
  ! fastest mean network call over blocks of BLOCK steps (less sensitive to a busy machine)
  integer, parameter :: BLOCK = 100
  real(dp) :: t_network_block = 0, best_call = huge(1.0_dp)

  ! ------------------------------------------------------------------ configuration
  if (command_argument_count() /= 1) call fail(EXIT_CONFIG, "usage: tracer_host run.nml")
  call get_command_argument(1, config)
  call read_config(trim(config))
  n = n_fine / factor
  coarse_dx = length / real(n_fine, dp) * real(factor, dp)
  batch = n * members
  use_closure = len_trim(contract) > 0
  call wind_init(the_wind, u_mean, n_fine, factor, length, &
                 reshape([large_amp(:n_large), large_k(:n_large), large_omega(:n_large), &
                          large_phase(:n_large)], [n_large, 4]), &
                 reshape([gust_amp(:n_gusts), gust_k(:n_gusts), gust_omega(:n_gusts), &
                          gust_phase(:n_gusts)], [n_gusts, 4]))
  allocate(q(n, members), q1(n, members), q2(n, members), k(n, members), u_face(n))
  call read_state(trim(q0_file), q)

  ! ------------------------------------------------------------------ the closure
  if (use_closure) then
    ! refuse an artifact made for another grid, other fields or another precision
    call contract_check(trim(contract), n, coarse_dx, "q,u_face", "1,km/h", "sgs_tendency", &
                        "1/h", "float32", width, n_features, model_file, status, message)
    if (status /= NNP_OK) call fail(EXIT_CONFIG, "artifact refused: "//trim(message))
    call torch_set_num_threads(int(threads, c_int))
    call torch_model_load(model, trim(model_file), torch_kCPU, status, message)
    if (status /= NNP_OK) call fail(EXIT_TORCH, trim(message))
    call torch_model_check(model, torch_kFloat32, n_features, 1, status, message)
    if (status /= NNP_OK) call fail(merge(EXIT_CONFIG, EXIT_TORCH, status == NNP_ERR_CONTRACT), &
                                    "artifact refused: "//trim(message))
    ! features(batch, F) and net_out(batch, 1): tensors view them once, for the whole run
    allocate(features(batch, n_features), net_out(batch, 1))
    features = 0
    net_out = 0
    call torch_tensor_from_array(in_tensor(1), features, torch_kCPU, status, message)
    if (status /= NNP_OK) call fail(EXIT_TORCH, trim(message))
    call torch_tensor_from_array(out_tensor(1), net_out, torch_kCPU, status, message)
    if (status /= NNP_OK) call fail(EXIT_TORCH, trim(message))
  end if

  ! ------------------------------------------------------------------ time loop (SSP-RK3)
  open(newunit=unit_out, file=trim(out_file), access='stream', form='unformatted', &
       status='replace', action='write', iostat=status, iomsg=message)
  if (status /= 0) call fail(EXIT_CONFIG, "cannot write "//trim(out_file)//": "//trim(message))
  write(unit_out) q
  saves = 1
  t = 0
  clock0 = wall_time()
  do step = 1, n_steps
    stage = 1
    t_stage = t
    call rhs(q, t_stage, k)
    q1 = q + dt * k
    stage = 2
    t_stage = t + dt
    call rhs(q1, t_stage, k)
    q2 = 0.75_dp * q + 0.25_dp * (q1 + dt * k)
    stage = 3
    t_stage = t + 0.5_dp * dt
    call rhs(q2, t_stage, k)
    q = q / 3.0_dp + (2.0_dp / 3.0_dp) * (q2 + dt * k)
    t = t + dt
    if (use_closure .and. mod(step, BLOCK) == 0) then
      best_call = min(best_call, (t_network - t_network_block) / (3 * BLOCK))
      t_network_block = t_network
    end if
    if (mod(step, save_every) == 0) then
      clock = wall_time()
      if (.not. all(ieee_is_finite(q))) then
        write(message, '(a, i0, a, f0.3, a)') "the state became NaN or inf by step ", step, &
          " (t = ", t, " h)"
        call fail(EXIT_BLOWUP, trim(message))
      end if
      write(unit_out) q
      saves = saves + 1
      t_io = t_io + (wall_time() - clock)
    end if
  end do
  t_loop = wall_time() - clock0
  close(unit_out)
  call write_timings(trim(timing_file))
  if (use_closure) then
    call torch_delete(in_tensor(1))
    call torch_delete(out_tensor(1))
    call torch_delete(model)
  end if
  write(output_unit, '(a, i0, a, i0, a, f0.3, a)') "tracer_host: ", n_steps, " steps, ", &
    saves, " saves, ", t_loop, " s"

contains

  !> the tendency [1/h] at time tt: resolved dynamics plus the network's subgrid tendency
  subroutine rhs(state, tt, tend)
    real(dp), intent(in) :: state(:, :), tt
    real(dp), intent(out) :: tend(:, :)
    real(dp) :: c0
    integer :: m, i, j, o, b, status_fw
    call coarse_face_wind(the_wind, tt, u_face)
    call resolved_tendency(state, u_face, coarse_dx, lam, alpha, tend)
    if (.not. use_closure) return
    ! marshalling in: periodic stencils [q(i-w..i+w), u_face(i-w..i+w)], the contract's order
    c0 = wall_time()
    do m = 1, members
      do i = 1, n
        b = (m - 1) * n + i
        do o = -width, width
          j = modulo(i - 1 + o, n) + 1
          features(b, o + width + 1) = real(state(j, m), real32)
          features(b, 2 * width + 1 + o + width + 1) = real(u_face(j), real32)
        end do
      end do
    end do
    t_marshal = t_marshal + (wall_time() - c0)
    c0 = wall_time()
    call torch_model_forward(model, in_tensor, out_tensor, status_fw, message)
    t_network = t_network + (wall_time() - c0)
    if (status_fw /= NNP_OK) call fail(EXIT_TORCH, trim(message))
    ! marshalling out: check, then add the float32 tendency to the float64 state's
    c0 = wall_time()
    if (.not. all(ieee_is_finite(net_out))) call report_nan()
    do m = 1, members
      do i = 1, n
        tend(i, m) = tend(i, m) + real(net_out((m - 1) * n + i, 1), dp)
      end do
    end do
    t_marshal = t_marshal + (wall_time() - c0)
  end subroutine rhs

  subroutine report_nan()
    integer :: b, m, i
    do b = 1, batch
      if (.not. ieee_is_finite(net_out(b, 1))) exit
    end do
    m = (b - 1) / n + 1
    i = b - (m - 1) * n
    write(message, '(a, i0, a, i0, a, f0.3, a, i0, a, i0, a, g0)') &
      "the network returned NaN or inf at step ", step, ", RK stage ", stage, " (t = ", &
      t_stage, " h), member ", m, ", cell ", i, ": ", net_out(b, 1)
    call fail(EXIT_NETWORK_NAN, trim(message))
  end subroutine report_nan

  subroutine read_config(path)
    character(*), intent(in) :: path
    integer :: unit, ios
    character(len=ERRMSG_LEN) :: msg
    open(newunit=unit, file=path, status='old', action='read', iostat=ios, iomsg=msg)
    if (ios /= 0) call fail(EXIT_CONFIG, "cannot open the namelist "//path//": "//trim(msg))
    read(unit, nml=run, iostat=ios, iomsg=msg)
    if (ios /= 0) call fail(EXIT_CONFIG, "bad &run namelist: "//trim(msg))
    rewind(unit)
    read(unit, nml=wind, iostat=ios, iomsg=msg)
    if (ios /= 0) call fail(EXIT_CONFIG, "bad &wind namelist: "//trim(msg))
    close(unit)
    if (factor < 2 .or. mod(factor, 2) /= 0 .or. mod(n_fine, factor) /= 0) &
      call fail(EXIT_CONFIG, "factor must be even and divide n_fine")
    if (dt <= 0 .or. n_steps < 1 .or. save_every < 1 .or. members < 1 .or. threads < 1) &
      call fail(EXIT_CONFIG, "need dt > 0, n_steps >= 1, save_every >= 1, members >= 1, " &
                //"threads >= 1")
    if (n_large < 0 .or. n_large > MAX_MODES .or. n_gusts < 0 .or. n_gusts > MAX_MODES) &
      call fail(EXIT_CONFIG, "n_large and n_gusts must lie in [0, 64]")
    if (len_trim(q0_file) == 0 .or. len_trim(out_file) == 0) &
      call fail(EXIT_CONFIG, "q0_file and out_file are required")
  end subroutine read_config

  subroutine read_state(path, state)
    character(*), intent(in) :: path
    real(dp), intent(out) :: state(:, :)
    integer :: unit, ios
    integer(int64) :: bytes
    character(len=ERRMSG_LEN) :: msg
    open(newunit=unit, file=path, access='stream', form='unformatted', status='old', &
         action='read', iostat=ios, iomsg=msg)
    if (ios /= 0) call fail(EXIT_CONFIG, "cannot open the initial state "//path//": "//trim(msg))
    inquire(unit=unit, size=bytes)
    if (bytes /= 8_int64 * size(state, kind=int64)) then
      write(msg, '(a, i0, a, i0, a, i0, a)') "the initial state holds ", bytes / 8, &
        " values, expected ", size(state, 2), " members x ", size(state, 1), " cells"
      call fail(EXIT_CONFIG, trim(msg))
    end if
    read(unit, iostat=ios, iomsg=msg) state
    if (ios /= 0) call fail(EXIT_CONFIG, "cannot read "//path//": "//trim(msg))
    close(unit)
    if (.not. all(ieee_is_finite(state))) call fail(EXIT_CONFIG, "the initial state is not finite")
  end subroutine read_state

  subroutine write_timings(path)
    character(*), intent(in) :: path
    integer :: unit, ios
    real(dp) :: t_dynamics
    if (len_trim(path) == 0) return
    t_dynamics = t_loop - t_network - t_marshal - t_io
    open(newunit=unit, file=path, status='replace', action='write', iostat=ios)
    if (ios /= 0) call fail(EXIT_CONFIG, "cannot write "//path)
    write(unit, '(a)') "{"
    write(unit, '(a, i0, a)') '  "steps": ', n_steps, ','
    write(unit, '(a, i0, a)') '  "network_calls": ', merge(3 * n_steps, 0, use_closure), ','
    write(unit, '(a, i0, a)') '  "members": ', members, ','
    write(unit, '(a, i0, a)') '  "cells": ', n, ','
    write(unit, '(a, i0, a)') '  "batch": ', batch, ','
    write(unit, '(a, i0, a)') '  "features": ', n_features, ','
    write(unit, '(a, i0, a)') '  "threads": ', threads, ','
    write(unit, '(a, es23.16, a)') '  "loop_s": ', t_loop, ','
    write(unit, '(a, es23.16, a)') '  "dynamics_s": ', t_dynamics, ','
    write(unit, '(a, es23.16, a)') '  "marshalling_s": ', t_marshal, ','
    write(unit, '(a, es23.16, a)') '  "network_s": ', t_network, ','
    if (best_call > 1.0e300_dp) best_call = 0
    write(unit, '(a, es23.16, a)') '  "network_best_call_s": ', best_call, ','
    write(unit, '(a, es23.16)') '  "io_s": ', t_io
    write(unit, '(a)') "}"
    close(unit)
  end subroutine write_timings

  subroutine fail(code, text)
    integer, intent(in) :: code
    character(*), intent(in) :: text
    write(error_unit, '(a)') "tracer_host: error: "//text
    flush(error_unit)
    call ieee_set_flag(ieee_all, .false.)  ! the message says what happened; no flag notes
    ! plain STOP with the code: an exit status and the message, no runtime backtrace
    select case (code)
    case (EXIT_CONFIG)
      stop 2
    case (EXIT_NETWORK_NAN)
      stop 3
    case (EXIT_TORCH)
      stop 4
    case (EXIT_BLOWUP)
      stop 5
    case default
      stop 1
    end select
  end subroutine fail

end program tracer_host
