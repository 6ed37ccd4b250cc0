/* The few LAPACK routines Tendon calls, as exported by OpenBLAS (Fortran calling convention: every argument
   by pointer, column-major storage, 32-bit integers — OpenBLAS here is built without INTERFACE64). The
   trailing length is gfortran's hidden CHARACTER length; OpenBLAS's C implementations ignore it. */
#ifndef TENDON_LAPACK_SHIM_H
#define TENDON_LAPACK_SHIM_H
#include <stddef.h>

/* Cholesky factorisation of a symmetric positive definite matrix (info > 0: leading minor not positive). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
/* Inverse from the Cholesky factor dpotrf_ produced (info > 0: the factor is singular). */
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

#endif
