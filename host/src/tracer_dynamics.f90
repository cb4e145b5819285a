!> The coarse 1-D tracer model of the book, in Fortran: the same equations and the same
!> operation order as nnparam.tracer (Python), so the two agree to round-off without a
!> closure.
!>
!>     dq/dt + d(u q)/dx = -lam q + alpha q**2        (x in km, t in h, u in km/h)
!>
!> Finite volume in flux form on a periodic grid, third-order upwind-biased face values
!> (-q(i-1) + 5 q(i) + 2 q(i+1)) / 6 at each right face (u > 0), SSP-RK3 in time (in the
!> host program). The wind is analytic: u = u_mean (1 + L + (1 + L)**2 G), with L and G sums
!> of travelling waves a sin(k x - omega t + phi) whose parameters Python writes to the
!> namelist (nnparam.host.write_config), so neither side re-implements the other's random
!> draws. The coarse model sees the fine-centre wind averaged over one coarse width around
!> each coarse right face.
module tracer_dynamics
  use, intrinsic :: iso_fortran_env, only: dp => real64
  implicit none
  private
  public :: dp, waves, wind_model, waves_init, wind_init, coarse_face_wind, resolved_tendency

  !> sum_m a_m sin(k_m x - omega_m t + phi_m) on fixed points x, with sin and cos of
  !> k x + phi precomputed: a sin(kx + phi - wt) = a cos(wt) sin(kx + phi) - a sin(wt) cos(.)
  type :: waves
    integer :: n_modes = 0
    real(dp), allocatable :: a(:), omega(:)
    real(dp), allocatable :: sin_kx(:, :), cos_kx(:, :)  ! (n_points, n_modes)
  end type waves

  type :: wind_model
    real(dp) :: u_mean = 0
    integer :: n_fine = 0, factor = 0
    type(waves) :: large, gusts
  end type wind_model

contains

  subroutine waves_init(w, amplitude, k, omega, phase, x)
    type(waves), intent(out) :: w
    real(dp), intent(in) :: amplitude(:), k(:), omega(:), phase(:), x(:)
    integer :: m
    w%n_modes = size(amplitude)
    w%a = amplitude
    w%omega = omega
    allocate(w%sin_kx(size(x), w%n_modes), w%cos_kx(size(x), w%n_modes))
    do m = 1, w%n_modes
      w%sin_kx(:, m) = sin(k(m) * x + phase(m))
      w%cos_kx(:, m) = cos(k(m) * x + phase(m))
    end do
  end subroutine waves_init

  !> the waves at time t [h] on their points (two sums, then their difference, as numpy)
  subroutine waves_eval(w, t, out)
    type(waves), intent(in) :: w
    real(dp), intent(in) :: t
    real(dp), intent(out) :: out(:)
    real(dp) :: cos_part(size(out))
    integer :: m
    out = 0
    cos_part = 0
    do m = 1, w%n_modes
      out = out + (w%a(m) * cos(w%omega(m) * t)) * w%sin_kx(:, m)
      cos_part = cos_part + (w%a(m) * sin(w%omega(m) * t)) * w%cos_kx(:, m)
    end do
    out = out - cos_part
  end subroutine waves_eval

  !> the wind on n_fine cell centres of width length / n_fine, seen at coarse faces
  subroutine wind_init(wind, u_mean, n_fine, factor, length, large, gusts)
    type(wind_model), intent(out) :: wind
    real(dp), intent(in) :: u_mean, length
    integer, intent(in) :: n_fine, factor
    real(dp), intent(in) :: large(:, :), gusts(:, :)  ! (n_modes, 4): amplitude, k, omega, phase
    real(dp), allocatable :: x(:)
    integer :: i
    wind%u_mean = u_mean
    wind%n_fine = n_fine
    wind%factor = factor
    allocate(x(n_fine))
    do i = 1, n_fine
      x(i) = (real(i - 1, dp) + 0.5_dp) * (length / real(n_fine, dp))
    end do
    call waves_init(wind%large, large(:, 1), large(:, 2), large(:, 3), large(:, 4), x)
    call waves_init(wind%gusts, gusts(:, 1), gusts(:, 2), gusts(:, 3), gusts(:, 4), x)
  end subroutine wind_init

  !> u_face(c): the fine-centre wind [km/h] at time t averaged over the `factor` fine cells
  !> centred on coarse right face c (periodic)
  subroutine coarse_face_wind(wind, t, u_face)
    type(wind_model), intent(in) :: wind
    real(dp), intent(in) :: t
    real(dp), intent(out) :: u_face(:)
    real(dp) :: envelope(wind%n_fine), gust(wind%n_fine), u(wind%n_fine)
    integer :: c, j, f
    call waves_eval(wind%large, t, envelope)
    call waves_eval(wind%gusts, t, gust)
    envelope = 1.0_dp + envelope
    u = wind%u_mean * (envelope + envelope**2 * gust)
    f = wind%factor
    do c = 1, size(u_face)
      u_face(c) = 0
      do j = 0, f - 1
        u_face(c) = u_face(c) + u(modulo((c - 1) * f + f / 2 + j, wind%n_fine) + 1)
      end do
      u_face(c) = u_face(c) / real(f, dp)
    end do
  end subroutine coarse_face_wind

  !> resolved tendency [1/h] of cell means q(n, members) given the wind at right faces (n)
  pure subroutine resolved_tendency(q, u_face, dx, lam, alpha, tend)
    real(dp), intent(in) :: q(:, :), u_face(:), dx, lam, alpha
    real(dp), intent(out) :: tend(:, :)
    real(dp) :: flux(size(q, 1))
    integer :: n, i, m, left, right
    n = size(q, 1)
    do m = 1, size(q, 2)
      do i = 1, n
        left = modulo(i - 2, n) + 1
        right = modulo(i, n) + 1
        flux(i) = u_face(i) * ((-q(left, m) + 5.0_dp * q(i, m) + 2.0_dp * q(right, m)) &
                               / 6.0_dp)
      end do
      do i = 1, n
        left = modulo(i - 2, n) + 1
        tend(i, m) = -(flux(i) - flux(left)) / dx + (-lam * q(i, m) + alpha * q(i, m)**2)
      end do
    end do
  end subroutine resolved_tendency

end module tracer_dynamics
